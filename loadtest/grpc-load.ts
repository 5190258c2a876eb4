/**
 * Open-loop gRPC load: unary ModelInfer calls, or requests on ModelStreamInfer streams, issued
 * on a fixed schedule regardless of answers (HTTP/2 multiplexes them), each timed from its send
 * to its answer. Requests are serialized once up front and sent as bytes.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as hdr from 'hdr-histogram-js';
import { PROTO_FILE } from '../src/frontend/grpc/definition.js';
import type { RunOptions, RunResult } from './open-loop.js';
import { Reader } from '../src/frontend/codec/protobuf.js';

export interface GrpcTarget {
  address: string;
  /** Serialized ModelInferRequest variants (with ids for streams). */
  requests: Buffer[];
  stream: boolean;
  metadata: grpc.Metadata;
}

const pkgDef = protoLoader.loadSync(PROTO_FILE, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
const service = (pkgDef['inference.GRPCInferenceService'] as unknown as Record<string, { requestSerialize(o: unknown): Buffer; responseDeserialize(b: Buffer): unknown }>);

/** Builds serialized requests for `model` from its gRPC ModelMetadata. */
export async function buildGrpcTarget(o: { url: string; model: string; batch: number; stream: boolean; headers?: Record<string, string> }, variants = 16): Promise<GrpcTarget> {
  const address = o.url.replace(/^grpc:\/\//, '').replace(/^http:\/\//, '');
  const pkg = grpc.loadPackageDefinition(pkgDef) as unknown as { inference: { GRPCInferenceService: new (a: string, c: grpc.ChannelCredentials) => grpc.Client & Record<string, (...a: unknown[]) => void> } };
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
  infer: { path: '/inference.GRPCInferenceService/ModelInfer', requestStream: false, responseStream: false },
  stream: { path: '/inference.GRPCInferenceService/ModelStreamInfer', requestStream: true, responseStream: true },
};
const identity = (b: Buffer) => b;
const RawClient = grpc.makeGenericClientConstructor(Object.fromEntries(Object.entries(rawMethods).map(([k, m]) => [k, {
  ...m, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
}])), 'RawInference');

/** The error flag and request id of a ModelStreamInferResponse, read without a full decode. */
function streamAnswer(b: Buffer): { error: boolean; id: string } {
  const r = new Reader(b);
  let error = false;
  let id = '';
  while (!r.done) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) error = r.bytes().byteLength > 0;
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
  return { error, id };
}

export async function runGrpcOpenLoop(t: GrpcTarget, o: RunOptions): Promise<RunResult> {
  const latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const lag = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const errors: Record<string, number> = {};
  let answered = 0;
  let sent = 0;
  let failed = 0;
  const clients = Array.from({ length: o.connections }, () => new RawClient(t.address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1,
  }) as unknown as grpc.Client & { infer: Function; stream: Function });
  // Streams: one per connection. Answers arrive in completion order, so send times are kept
  // per request id (the variants carry ids 0..15) and matched when the answer names its id.
  const streams = t.stream ? clients.map((c) => {
    const s = c.stream(t.metadata) as grpc.ClientDuplexStream<Buffer, Buffer>;
    const pending = new Map<string, bigint[]>();
    let outstanding = 0;
    s.on('data', (b: Buffer) => {
      const a = streamAnswer(b);
      const at = pending.get(a.id)?.shift();
      answered++;
      outstanding--;
      if (at !== undefined) latency.recordValue(Math.max(1, Number(process.hrtime.bigint() - at) / 1000));
      if (a.error) {
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
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const total = Math.round(o.rate * o.durationS);
  const intervalNs = 1e9 / o.rate;
  let lastProgress = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = Number(process.hrtime.bigint() - start);
      while (sent < total && sent * intervalNs <= now) {
        lag.recordValue(Math.max(1, (now - sent * intervalNs) / 1000));
        const req = t.requests[sent % t.requests.length]!;
        const k = sent % o.connections;
        const at = process.hrtime.bigint();
        if (t.stream) {
          streams[k]!.send(req, String(sent % t.requests.length));
        } else {
          clients[k]!.infer(req, t.metadata, (e: grpc.ServiceError | null) => {
            answered++;
            latency.recordValue(Math.max(1, Number(process.hrtime.bigint() - at) / 1000));
            if (e) {
              const name = grpc.status[e.code] ?? 'error';
              errors[name] = (errors[name] ?? 0) + 1;
              failed++;
            }
          });
        }
        sent++;
      }
      if (o.onProgress && now - lastProgress > 1e9) {
        lastProgress = now;
        o.onProgress({ elapsedS: now / 1e9, sent, answered, errors: failed });
      }
      if (sent >= total) return resolve();
      setTimeout(tick, 1);
    };
    tick();
  });
  const until = Date.now() + 10_000;
  while (answered < sent && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  if (answered < sent) errors.timeout = sent - answered;
  for (const st of streams) st.s.end();
  for (const c of clients) c.close();
  return {
    offeredRate: o.rate, sent, answered, errors,
    histogram: hdr.encodeIntoCompressedBase64(latency),
    lagHistogram: hdr.encodeIntoCompressedBase64(lag),
    wallS, cpu: (cpu.user + cpu.system) / 1e6 / wallS,
  };
}
