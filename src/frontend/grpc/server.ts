/**
 * The gRPC front end: `inference.GRPCInferenceService` (Open Inference Protocol plus Triton's
 * configuration, statistics, repository and streaming methods), `grpc.health.v1.Health` and
 * server reflection, over @grpc/grpc-js. A thin adapter over the engine; errors come from the
 * catalogue. Messages over the size limit are refused by grpc-js with RESOURCE_EXHAUSTED.
 */
import { Server, ServerCredentials, type sendUnaryData, type ServiceError, type ServerDuplexStream, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { SluiceError } from '../../errors.js';
import type { Service } from '../../service/service.js';
import { serveGrpcShared, type SharedGrpcListener } from '../../net/reuseport.js';
import { earliest, type InferResponse } from '../../service/types.js';
import { decodeModelInfer, encodeModelInfer, encodeStreamResponse } from '../codec/grpc-infer.js';
import { tritonConfig, tritonStats } from '../codec/triton-model.js';
import type { Authorize } from '../http/context.js';
import { EXTENSIONS, SERVER_NAME } from '../http/routes/v2.js';
import { feedbackService, inferenceService, reflectedDefinition, SERVICE_NAME } from './definition.js';
import { parseFeedback, submitParsed } from '../../learn/feedback.js';
import { toGrpcError } from './errors.js';

/** HTTP/2 receive window per stream, and per connection (see tuneTransport). */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 4 << 20;

export interface GrpcServerOptions {
  maxMessageBytes?: number;
  streamMaxInFlight?: number;
  /** Calls open at once per connection (default: config grpcMaxConcurrentStreams). */
  maxConcurrentStreams?: number;
  authorize?: Authorize;
  serverVersion?: string;
}

type Unary<Req> = ServerUnaryCall<Req, unknown>;

export class GrpcServer {
  private readonly server: Server;
  readonly health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  /** Readiness false (health NOT_SERVING) while calls are still answered: a drain's first step. */
  private notReady = false;
  /** New inference refused (SHUTTING_DOWN): shutting down. */
  private draining = false;
  inFlight = 0;
  /** This thread's listener when serving a shared port (I/O threads). */
  private shared: SharedGrpcListener | undefined;
  private readonly authorize: Authorize;
  private readonly streamMaxInFlight: number;
  /** The model and version are resolved before a request's inputs are checked (see Engine.checkTarget). */
  private readonly checkTarget = (model: string, version: string | undefined): void => this.engine.checkTarget(model, version);

  constructor(private readonly engine: Service, opts: GrpcServerOptions = {}) {
    const max = opts.maxMessageBytes ?? engine.config.grpcMaxMessageBytes;
    this.streamMaxInFlight = opts.streamMaxInFlight ?? engine.config.streamMaxInFlight;
    this.authorize = opts.authorize ?? (() => undefined);
    this.server = new Server({
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
      // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: past this many open calls on a connection, a
      // client queues new ones itself. Without a bound, an overloaded server took in every call
      // offered (its receive windows are large, for streams) and its throughput sank under the
      // backlog: Go open-loop generator at 8,000 calls/s, 3 runs each, 3,400-4,070 calls/s
      // answered without the bound, 4,400-5,500 with 256.
      'grpc.max_concurrent_streams': opts.maxConcurrentStreams ?? engine.config.grpcMaxConcurrentStreams,
    });
    this.server.addService(inferenceService(), this.handlers(opts.serverVersion ?? '0.0.0'));
    this.server.addService(feedbackService(), { Submit: this.unary((r: FeedbackRequest, call) => this.feedback(r, call)) });
    this.health.addToServer(this.server);
    new ReflectionService(reflectedDefinition).addToServer(this.server);
  }

  /**
   * Wraps a unary handler: counts it in flight, maps errors, refuses work while draining. A
   * synchronous result is answered at once; a promise with no extra hops (ModelInfer's path).
   */
  private unary<Req>(fn: (req: Req, call: Unary<Req>) => unknown | Promise<unknown>, duringDrain = true, admitted = false) {
    const admission = this.engine.admission;
    return (call: Unary<Req>, callback: sendUnaryData<unknown>) => {
      if (this.draining && !duringDrain) return callback(toGrpcError(new SluiceError('SHUTTING_DOWN', 'server is draining')) as never);
      // Inference calls pass admission control before their message is decoded.
      if (admitted && !admission.admit()) {
        this.engine.metrics.countError('OVERLOADED');
        return callback(this.overloaded(admission.overloaded) as never);
      }
      this.inFlight++;
      const answer = (res: unknown) => {
        this.inFlight--;
        if (admitted) admission.release();
        callback(null, res);
      };
      const refuse = (e: unknown) => {
        this.inFlight--;
        if (admitted) admission.release();
        // Refused inside the engine (the pool's in-flight limit, a full batcher queue): told
        // when to come back, like a refusal at the call's entry.
        callback((e instanceof SluiceError && e.code === 'OVERLOADED' ? this.overloaded(e) : toGrpcError(e)) as never);
      };
      let r: unknown;
      try {
        r = fn(call.request, call);
      } catch (e) {
        return refuse(e);
      }
      if (r instanceof Promise) r.then(answer, refuse);
      else answer(r);
    };
  }

  /** An OVERLOADED status (UNAVAILABLE) with `sluice-code` and `retry-after` (seconds) metadata. */
  private overloaded(e: SluiceError): Partial<ServiceError> {
    const err = toGrpcError(e);
    err.metadata!.set('retry-after', String(this.engine.admission.o.retryAfterS));
    return err;
  }

  /** The caller's name from its authorization metadata; a promise only when the check is async. */
  private auth(scope: 'predict' | 'admin' | 'feedback', call: { metadata: { get(k: string): unknown[] } }): string | undefined | Promise<string | undefined> {
    const v = call.metadata.get('authorization')[0];
    return this.authorize(scope, typeof v === 'string' ? v : '');
  }

  /** The call's gRPC deadline on the engine's clock (performance.now), or undefined for none. */
  private callDeadline(call: { getDeadline(): Date | number }): number | undefined {
    const d = call.getDeadline();
    const ms = d instanceof Date ? d.getTime() : d;
    return Number.isFinite(ms) ? performance.now() + (ms - Date.now()) : undefined;
  }

  /**
   * Decodes and runs one ModelInferRequest. `callDeadline` is the call's deadline, converted
   * once per call (or stream); the request's timeout parameter can only shorten it.
   */
  private async infer(buf: Buffer, call: { metadata: { get(k: string): unknown[] } }, callDeadline: number | undefined): Promise<InferResponse> {
    const who = this.auth('predict', call);
    if (who instanceof Promise) await who;
    const { request, timeoutUs } = decodeModelInfer(buf, this.checkTarget);
    request.deadline = earliest(callDeadline, timeoutUs > 0 ? performance.now() + timeoutUs / 1000 : undefined);
    // Every caller of this passed admission (ModelInfer and each stream message).
    request.admitted = true;
    return this.engine.infer(request);
  }

  /** sluice.v1.Feedback/Submit: the events of POST /v1/feedback, one result per event. */
  private async feedback(r: FeedbackRequest, call: { metadata: { get(k: string): unknown[] } }): Promise<{ results: unknown[] }> {
    await this.auth('feedback', call);
    if (r.events.length === 0) throw new SluiceError('FEEDBACK_INVALID', 'events must not be empty');
    const events = r.events.map((e) => ({ event_id: e.event_id, reward: e.reward, ...(e.unit_id !== '' ? { unit_id: e.unit_id } : {}), ...(e.at_ms !== 0 ? { at: e.at_ms } : {}) }));
    const parsed = parseFeedback({ events }, this.engine.config.feedbackMaxBatch);
    const results = await submitParsed(parsed, (items) => this.engine.feedback(items));
    return {
      results: results.map((o) => ('status' in o ? { event_id: o.event_id, status: o.status } : { event_id: o.event_id ?? '', code: o.error.code, message: o.error.message })),
    };
  }

  private handlers(serverVersion: string): UntypedServiceImplementation {
    const e = this.engine;
    return {
      ServerLive: this.unary(() => ({ live: e.live() })),
      ServerReady: this.unary(() => ({ ready: !this.notReady && e.ready() })),
      ModelReady: this.unary((r: { name: string; version: string }) => {
        e.modelMetadata(r.name, r.version || undefined);
        return { ready: !this.notReady && e.modelReady(r.name, r.version || undefined) };
      }),
      ServerMetadata: this.unary(() => ({ name: SERVER_NAME, version: serverVersion, extensions: EXTENSIONS })),
      ModelMetadata: this.unary((r: { name: string; version: string }) => e.modelMetadata(r.name, r.version || undefined)),
      ModelInfer: this.unary((buf: Buffer, call) => this.infer(buf, call, this.callDeadline(call)).then(encodeModelInfer), false, true),
      ModelStreamInfer: (call: ServerDuplexStream<Buffer, Buffer>) => this.stream(call),
      ModelConfig: this.unary((r: { name: string; version: string }) => ({ config: tritonConfig(e.modelConfig(r.name, r.version || undefined), e.poolThreads) })),
      ModelStatistics: this.unary(async (r: { name: string; version: string }) => {
        // The versions being served (Triton reports loaded versions only).
        const names = r.name !== '' ? [r.name] : (await e.repositoryIndex()).filter((m) => m.state === 'READY').map((m) => m.name);
        const served = names.map((name) => ({ name, versions: e.modelMetadata(name, r.version || undefined).versions.filter((v) => r.version === '' || v === r.version) }));
        // Every I/O thread's figures, merged.
        const { metrics } = await e.wholeMetrics();
        const stats = served.flatMap(({ name, versions }) => versions.map((v) => tritonStats(metrics.of(name, v))));
        return { model_stats: stats };
      }),
      RepositoryIndex: this.unary(async (r: { ready: boolean }) => {
        const all = await e.repositoryIndex();
        return { models: (r.ready ? all.filter((m) => m.state === 'READY') : all).map((m) => ({ ...m, version: m.version ?? '' })) };
      }),
      RepositoryModelLoad: this.unary(async (r: { model_name: string; parameters: Record<string, RepositoryParameter> }, call) => {
        await this.auth('admin', call);
        const d = r.parameters.default;
        if (d !== undefined && d.parameter_choice !== 'bool_param') throw new SluiceError('INVALID_ARGUMENT', 'parameter default must be a bool');
        await e.load(r.model_name, { version: versionParameter(r.parameters), asDefault: d?.bool_param });
        return {};
      }),
      RepositoryModelUnload: this.unary(async (r: { model_name: string; parameters: Record<string, RepositoryParameter> }, call) => {
        await this.auth('admin', call);
        await e.unload(r.model_name, { version: versionParameter(r.parameters) });
        return {};
      }),
    };
  }

  /**
   * Many requests in flight per stream, answered as they complete. Reading pauses when
   * `streamMaxInFlight` are in flight or when the client is not reading its answers (grpc-js
   * write() returns false), so HTTP/2 flow control pushes back on the client and the server's
   * memory per stream stays bounded. A failed request gets an error_message; the stream stays.
   */
  private stream(call: ServerDuplexStream<Buffer, Buffer>): void {
    let inFlight = 0;
    let ended = false;
    let blocked = false;
    let paused = false;
    const maybeResume = () => {
      if (paused && !blocked && inFlight < this.streamMaxInFlight) {
        paused = false;
        call.resume();
      }
    };
    const maybeEnd = () => {
      if (ended && inFlight === 0) call.end();
    };
    const write = (b: Buffer) => {
      if (call.cancelled || call.destroyed) return;
      // One drain listener per blocked spell: answers completing while blocked only queue.
      if (!call.write(b) && !blocked) {
        blocked = true;
        if (!paused) {
          paused = true;
          call.pause();
        }
        call.once('drain', () => {
          blocked = false;
          maybeResume();
        });
      }
    };
    const deadline = this.callDeadline(call);
    const admission = this.engine.admission;
    this.inFlight++;
    call.on('data', (buf: Buffer) => {
      inFlight++;
      if (inFlight >= this.streamMaxInFlight && !paused) {
        paused = true;
        call.pause();
      }
      // Each message passes admission control (before it is decoded; a refusal carries no id).
      const admitted = !this.draining && admission.admit();
      const run = this.draining ? Promise.reject(new SluiceError('SHUTTING_DOWN', 'server is draining'))
        : !admitted ? Promise.reject(admission.overloaded)
          : this.infer(buf, call, deadline);
      if (!admitted && !this.draining) this.engine.metrics.countError('OVERLOADED');
      run.then(
        (res) => write(encodeStreamResponse(res)),
        (err: unknown) => write(encodeStreamResponse(undefined, err instanceof SluiceError ? err : new SluiceError('INTERNAL', 'internal error'))),
      ).finally(() => {
        inFlight--;
        if (admitted) admission.release();
        maybeResume();
        maybeEnd();
      });
    });
    call.on('end', () => {
      ended = true;
      maybeEnd();
    });
    const done = () => {
      this.inFlight--;
    };
    call.once('close', done);
    call.on('error', () => undefined);
  }

  /**
   * Serves this thread's share of `host:port` (I/O threads, src/io): connections accepted on
   * this thread's SO_REUSEPORT socket are injected into the server, which is never bound.
   */
  async listenShared(host: string, port: number): Promise<number> {
    this.shared = await serveGrpcShared(this.server, host, port);
    return this.shared.port;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, bound) => {
        if (err) return reject(new SluiceError('CONFIG_INVALID', `cannot listen on ${host}:${port}: ${err.message}`));
        this.tuneTransport();
        resolve(bound);
      });
    });
  }

  /**
   * Two transport settings grpc-js has no server option for, so its HTTP/2 servers are reached
   * directly (grpc-js is pinned; without the field, the defaults stay):
   * - TCP_NODELAY: grpc-js sets it on its client sockets but not on the server's, so a
   *   response's headers, message and trailers (three small writes) wait for ACKs under Nagle's
   *   algorithm: measured here, 1,500 calls/s at 16 in flight with both processes mostly idle.
   * - HTTP/2 receive windows: with the 64 KiB default for both the stream and the connection, a
   *   client can send one 64 KiB window per round trip through both event loops, and 400 kB
   *   stream requests (1,024 rows) were flow-control bound with both processes half idle. The
   *   larger windows also bound what one connection can make the server buffer.
   */
  private tuneTransport(): void {
    type Session = { setLocalWindowSize(n: number): void };
    type Http2Server = {
      on(e: 'connection', f: (s: { setNoDelay(b: boolean): void }) => void): void;
      on(e: 'session', f: (s: Session) => void): void;
      updateSettings(s: { initialWindowSize: number }): void;
    };
    const servers = (this.server as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers;
    if (!servers) return;
    for (const h of servers.keys()) {
      h.on('connection', (socket) => socket.setNoDelay(true));
      h.updateSettings({ initialWindowSize: STREAM_WINDOW });
      h.on('session', (session) => session.setLocalWindowSize(CONNECTION_WINDOW));
    }
  }

  /** Health NOT_SERVING and ServerReady false from now on; calls are still taken and answered. */
  unready(): void {
    this.notReady = true;
    this.health.setStatus('', 'NOT_SERVING');
    this.health.setStatus(SERVICE_NAME, 'NOT_SERVING');
  }

  /** Drains: health NOT_SERVING first, new inference refused, in-flight calls finish, then shutdown. */
  async close(timeoutMs = 10_000): Promise<void> {
    this.unready();
    this.draining = true;
    if (this.shared) {
      // Stop accepting, GOAWAY the sessions, cancel what still runs after the timeout.
      await this.shared.close(timeoutMs);
      this.server.forceShutdown();
      return;
    }
    const until = Date.now() + timeoutMs;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, Math.max(0, until - Date.now()));
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

interface RepositoryParameter { string_param?: string; int64_param?: number; bool_param?: boolean; parameter_choice?: string }

/** A repository call's `version` parameter (string or int64), undefined when absent or empty. */
function versionParameter(p: Record<string, RepositoryParameter> | undefined): string | undefined {
  const v = p?.version;
  const version = v === undefined ? undefined : v.parameter_choice === 'int64_param' ? String(v.int64_param) : v.string_param;
  return version || undefined;
}

interface FeedbackRequest { events: Array<{ event_id: string; reward: number; unit_id: string; at_ms: number }> }
