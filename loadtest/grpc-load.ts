/**
 * Open-loop gRPC load: unary ModelInfer calls, or requests on ModelStreamInfer streams, issued
 * on a fixed schedule regardless of answers (HTTP/2 multiplexes them), each timed from its send
 * to its answer. Requests are serialized once up front and sent as bytes.
 */
import * as grpc from '@grpc/grpc-js';
import * as hdr from 'hdr-histogram-js';
import { packageDefinition, SERVICE_NAME } from '../src/frontend/grpc/definition.js';
import { newHistogram, pace, Recorder, type RunOptions, type RunResult } from './open-loop.js';
import { Reader } from '../src/frontend/codec/protobuf.js';

export interface GrpcTarget {
  address: string;
  /** Serialized ModelInferRequest variants (with ids for streams). */
  requests: Buffer[];
  stream: boolean;
  metadata: grpc.Metadata;
}

const service = (packageDefinition[SERVICE_NAME] as unknown as Record<string, { requestSerialize(o: unknown): Buffer; responseDeserialize(b: Buffer): unknown }>);

/** Builds serialized requests for `model` from its gRPC ModelMetadata. */
export async function buildGrpcTarget(o: { url: string; model: string; batch: number; stream: boolean; headers?: Record<string, string> }, variants = 16): Promise<GrpcTarget> {
  const address = o.url.replace(/^grpc:\/\//, '').replace(/^http:\/\//, '');
  const pkg = grpc.loadPackageDefinition(packageDefinition) as unknown as { inference: { GRPCInferenceService: new (a: string, c: grpc.ChannelCredentials) => grpc.Client & Record<string, (...a: unknown[]) => void> } };
  const client = new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(o.headers ?? {})) metadata.set(k.toLowerCase(), v);
  const meta = await new Promise<{ inputs: Array<{ name: string; datatype: string; shape: number[] }> }>((resolve, reject) => {
    client.ModelMetadata!({ name: o.model }, metadata, (e: Error | null, r: never) => (e ? reject(new Error(`ModelMetadata(${o.model}): ${e.message}`)) : resolve(r)));
  });
  client.close();
  let seed = 1;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const requests = Array.from({ length: variants }, (_, k) => {
    const inputs = meta.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape.map((d, i) => (d === -1 ? (i === 0 ? o.batch : 1) : d)) }));
    const raw = inputs.map((t) => {
      if (t.datatype !== 'FP32') throw new Error(`gRPC load supports FP32 inputs; ${t.name} is ${t.datatype}`);
      const n = t.shape.reduce((a, b) => a * b, 1);
      const f = new Float32Array(n);
      for (let i = 0; i < n; i++) f[i] = rnd() * 2 - 1;
      return Buffer.from(f.buffer);
    });
    return service.ModelInfer!.requestSerialize({ model_name: o.model, id: String(k), inputs, raw_input_contents: raw });
  });
  return { address, requests, stream: o.stream, metadata };
}

const rawMethods = {
  infer: { path: `/${SERVICE_NAME}/ModelInfer`, requestStream: false, responseStream: false },
  stream: { path: `/${SERVICE_NAME}/ModelStreamInfer`, requestStream: true, responseStream: true },
};
const identity = (b: Buffer) => b;
const RawClientConstructor = grpc.makeGenericClientConstructor(Object.fromEntries(Object.entries(rawMethods).map(([k, m]) => [k, {
  ...m, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
}])), 'RawInference');

/**
 * A pass-through client: ModelInfer (`infer`) and ModelStreamInfer (`stream`) send the bytes
 * given and answer with the bytes received, so requests are serialized once (or deliberately
 * malformed) and no decoding is timed. No message size limits.
 */
export interface RawClient extends grpc.Client {
  infer(req: Buffer, metadata: grpc.Metadata, cb: (e: grpc.ServiceError | null, res?: Buffer) => void): grpc.ClientUnaryCall;
  infer(req: Buffer, cb: (e: grpc.ServiceError | null, res?: Buffer) => void): grpc.ClientUnaryCall;
  stream(metadata?: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer>;
}

export function rawClient(address: string): RawClient {
  return new RawClientConstructor(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1,
  }) as unknown as RawClient;
}

/** The error flag and request id of a ModelStreamInferResponse, read without a full decode. */
export function streamAnswer(b: Buffer): { error: boolean; overloaded: boolean; id: string } {
  const r = new Reader(b);
  let error = false;
  let overloaded = false;
  let id = '';
  while (!r.done) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) {
      const m = r.bytes();
      error = m.byteLength > 0;
      // Error messages start with their code ("OVERLOADED: ...").
      overloaded = Buffer.from(m.buffer, m.byteOffset, m.byteLength).toString('latin1', 0, 10) === 'OVERLOADED';
    }
    else if (f === 2 && w === 2) {
      const inner = r.bytes();
      const ir = new Reader(b, inner.byteOffset - b.byteOffset, inner.byteOffset - b.byteOffset + inner.byteLength);
      while (!ir.done) {
        const [g, gw] = ir.tag();
        if (g === 3 && gw === 2) id = ir.string();
        else ir.skip(gw);
      }
    } else r.skip(w);
  }
  return { error, overloaded, id };
}

export async function runGrpcOpenLoop(t: GrpcTarget, o: RunOptions): Promise<RunResult> {
  const rec = new Recorder(o.windowMs);
  const t0 = process.hrtime.bigint();
  const since = (at: bigint) => Number(at - t0) / 1e9;
  const lag = newHistogram();
  const errors: Record<string, number> = {};
  let answered = 0;
  let failed = 0;
  const clients = Array.from({ length: o.connections }, () => rawClient(t.address));
  // Streams: one per connection. Answers arrive in completion order, so send times are kept
  // per request id (the variants carry ids 0..15) and matched when the answer names its id.
  const streams = t.stream ? clients.map((c) => {
    const s = c.stream(t.metadata);
    const pending = new Map<string, bigint[]>();
    let outstanding = 0;
    s.on('data', (b: Buffer) => {
      const a = streamAnswer(b);
      const at = pending.get(a.id)?.shift();
      answered++;
      outstanding--;
      // A refusal under overload is an error message starting with its code.
      const outcome = !a.error ? 'ok' : a.overloaded ? 'refused' : 'error';
      if (at !== undefined) rec.record(outcome, Number(process.hrtime.bigint() - at) / 1000, since(at));
      if (outcome === 'error') {
        errors.stream_error = (errors.stream_error ?? 0) + 1;
        failed++;
      }
    });
    s.on('error', (e: grpc.ServiceError) => {
      const name = grpc.status[e.code] ?? 'error';
      errors[name] = (errors[name] ?? 0) + outstanding;
      failed += outstanding;
      answered += outstanding;
      outstanding = 0;
    });
    const send = (req: Buffer, id: string) => {
      const q = pending.get(id) ?? [];
      q.push(process.hrtime.bigint());
      pending.set(id, q);
      outstanding++;
      s.write(req);
    };
    return { s, send };
  }) : [];
  // Round-robin over the connections. A failed stream counts its outstanding requests as
  // answered (with errors), so nothing here is ever lost.
  const run = await pace(o, lag, (i) => {
    const req = t.requests[i % t.requests.length]!;
    const k = i % o.connections;
    const at = process.hrtime.bigint();
    if (t.stream) {
      streams[k]!.send(req, String(i % t.requests.length));
    } else {
      clients[k]!.infer(req, t.metadata, (e) => {
        answered++;
        const outcome = !e ? 'ok' : e.metadata?.get('sluice-code')[0] === 'OVERLOADED' ? 'refused' : 'error';
        rec.record(outcome, Number(process.hrtime.bigint() - at) / 1000, since(at));
        if (e && outcome === 'error') {
          const name = grpc.status[e.code] ?? 'error';
          errors[name] = (errors[name] ?? 0) + 1;
          failed++;
        }
      });
    }
  }, () => ({ answered, lost: 0, errors: failed }));
  if (answered < run.sent) errors.timeout = run.sent - answered;
  for (const st of streams) st.s.end();
  for (const c of clients) c.close();
  return {
    offeredRate: o.rate, sent: run.sent, answered, errors,
    ...rec.fields(),
    lagHistogram: hdr.encodeIntoCompressedBase64(lag),
    wallS: run.wallS, cpu: run.cpu,
  };
}
