/**
 * Starting and stopping a whole server: the engine, the HTTP front end (with the WebSocket
 * stream) and the gRPC front end. Used by `npm start` (main.ts) and `sluice serve`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from './config/index.js';
import { GrpcServer } from './frontend/grpc/server.js';
import { HttpServer } from './frontend/http/server.js';
import { errorFields, log } from './log.js';
import { projectRoot } from './paths.js';
import { Engine } from './service/engine.js';

export const version = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;

export interface Running {
  engine: Engine;
  http: HttpServer;
  grpc: GrpcServer;
  httpPort: number;
  grpcPort: number;
  /** Drains both front ends (readiness false first), then stops the engine. */
  stop(): Promise<void>;
}

export async function serve(overrides: Partial<Config> = {}): Promise<Running> {
  const engine = await Engine.start(overrides);
  const config = engine.config;
  const http = new HttpServer(engine, { serverVersion: version });
  const grpc = new GrpcServer(engine, { serverVersion: version });
  const httpPort = await http.listen(config.httpHost, config.httpPort);
  const grpcPort = await grpc.listen(config.grpcHost, config.grpcPort);
  const models = (await engine.repositoryIndex()).filter((m) => m.state === 'READY').map((m) => `${m.name}@${m.version}`);
  log.info('sluice: serving', { url: `http://${config.httpHost}:${httpPort}`, grpc: `${config.grpcHost}:${grpcPort}`, models });
  return {
    engine, http, grpc, httpPort, grpcPort,
    async stop() {
      log.info('sluice: draining', { inFlight: http.ctx.inFlight + grpc.inFlight });
      await Promise.all([http.close(config.drainTimeoutMs), grpc.close(config.drainTimeoutMs)]);
      await engine.close();
      log.info('sluice: stopped');
    },
  };
}

/** Runs until SIGTERM/SIGINT, then drains and exits 0 (a second signal exits 1 at once). */
export async function serveUntilSignalled(overrides: Partial<Config> = {}): Promise<void> {
  let running: Running;
  try {
    running = await serve(overrides);
  } catch (e) {
    log.error('sluice: failed to start', errorFields(e));
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn('sluice: second signal, exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('sluice: signal', { signal });
    await running.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
