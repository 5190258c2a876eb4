/**
 * One port served by several threads (the groundwork of I/O threads, issue #11).
 *
 * Node 20's `net` cannot set SO_REUSEPORT, so the addon makes the sockets
 * (native/src/reuseport.rs) and each thread adopts its own with `net.Server.listen({ fd })`:
 * the kernel spreads new connections over the sockets of the group (a hash of the 4-tuple), and
 * every thread accepts and serves its share on its own event loop, with no hand-off. Works the
 * same in the main thread and in worker_threads: a descriptor is process-wide, so a socket made
 * in one thread can be adopted in another (pass its `fd` in workerData).
 *
 * gRPC: grpc-js binds its own sockets, so `serveGrpcShared` hands each connection accepted here
 * to the server through `createConnectionInjector` instead.
 *
 * uWebSockets.js makes its own sockets and sets SO_REUSEPORT only for a nonzero port, so an app
 * started on port 0 cannot be joined; `reservePort` holds a port (a bound, non-listening
 * SO_REUSEPORT socket, which takes no connections) while the apps start on it.
 *
 * Caveats of SO_REUSEPORT: connections waiting in a socket's accept queue when that socket closes
 * are reset (close one thread's listener only when draining all of them), and any process of the
 * same user can join the group of a fixed port.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { closeReusePort, listenReusePort, reserveReusePort } from '../native.js';

/** `host` as an IP literal: names (`localhost`) resolve with the system resolver, as Node's `listen` would. */
export async function ipLiteral(host: string): Promise<string> {
  if (net.isIP(host)) return host;
  return (await lookup(host)).address;
}

/** A port held for servers that make their own SO_REUSEPORT sockets; `release` once they listen. */
export interface PortReservation {
  readonly port: number;
  release(): void;
}

/** Holds `host:port` (port 0: the kernel's choice) without taking connections. */
export async function reservePort(host: string, port: number): Promise<PortReservation> {
  const s = reserveReusePort(await ipLiteral(host), port);
  let open = true;
  return {
    port: s.port,
    release() {
      if (open) closeReusePort(s.fd);
      open = false;
    },
  };
}

/** This thread's listener in a shared port's group. */
export interface SharedListener {
  readonly port: number;
  readonly server: net.Server;
  /**
   * Stops accepting at once (this thread's socket leaves the group; connections still queued on
   * it are reset) and resolves when the connections it accepted have all ended.
   */
  close(): Promise<void>;
}

/**
 * Joins (or, with port 0, starts) the group of `host:port` with a socket of this thread, served
 * by a `net.Server` that passes each accepted connection to `onConnection`.
 */
export async function listenShared(host: string, port: number, onConnection: (socket: net.Socket) => void): Promise<SharedListener> {
  const s = listenReusePort(await ipLiteral(host), port);
  const server = net.createServer({ noDelay: true }, onConnection);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd: s.fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    // Not adopted: the descriptor is still ours to close.
    server.close();
    closeReusePort(s.fd);
    throw e;
  }
  return {
    port: s.port,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A grpc-js server answering on this thread's share of a port. */
export interface SharedGrpcListener {
  readonly port: number;
  /**
   * Stops accepting, asks open HTTP/2 sessions to finish (GOAWAY), cancels what is still
   * running after `graceMs`, and resolves once this thread's listener is closed.
   */
  close(graceMs: number): Promise<void>;
}

/**
 * Serves `server` (services already added; never bound) on this thread's socket of `host:port`:
 * each accepted connection is injected into grpc-js, which runs HTTP/2 and the calls on this
 * thread's event loop.
 */
export async function serveGrpcShared(server: grpc.Server, host: string, port: number): Promise<SharedGrpcListener> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  let listener: SharedListener;
  try {
    listener = await listenShared(host, port, (socket) => injector.injectConnection(socket));
  } catch (e) {
    injector.destroy();
    throw e;
  }
  return {
    port: listener.port,
    async close(graceMs) {
      const closed = listener.close();
      injector.drain(graceMs);
      await closed;
      injector.destroy();
    },
  };
}
