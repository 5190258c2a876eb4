/**
 * What to send: an Open Inference Protocol infer request for any model on any v2 server, built
 * from the model's metadata (GET /v2/models/{m}), with seeded random data, as JSON or with the
 * binary tensor extension.
 */
import { mulberry32 } from '../src/random.js';

export interface TargetOptions {
  url: string;
  model: string;
  /** Rows per request (the batch dimension). */
  batch: number;
  binary: boolean;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
}

export interface Target {
  host: string;
  port: number;
  /** Complete HTTP/1.1 requests (head and body), a few variants to cycle through. */
  requests: Buffer[];
}

interface TensorMeta {
  name: string;
  datatype: string;
  shape: number[];
}

const FLOAT = new Set(['FP32', 'FP64', 'FP16']);
const BYTES: Record<string, number> = { FP32: 4, FP64: 8, INT32: 4, INT64: 8, INT8: 1, UINT8: 1, BOOL: 1, INT16: 2, UINT16: 2 };

function body(inputs: TensorMeta[], batch: number, binary: boolean, seed: number): { bytes: Buffer; headerLength?: number } {
  const rnd = mulberry32(seed);
  const tensors = inputs.map((t) => {
    const shape = t.shape.map((d, i) => (d === -1 ? (i === 0 ? batch : 1) : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const values = Array.from({ length: n }, () => (FLOAT.has(t.datatype) ? Math.fround(rnd() * 2 - 1) : t.datatype === 'BOOL' ? rnd() < 0.5 : Math.floor(rnd() * 10)));
    return { t, shape, values };
  });
  if (!binary) {
    const doc = { inputs: tensors.map(({ t, shape, values }) => ({ name: t.name, datatype: t.datatype, shape, data: values })) };
    return { bytes: Buffer.from(JSON.stringify(doc)) };
  }
  const parts: Buffer[] = [];
  const doc = {
    inputs: tensors.map(({ t, shape, values }) => {
      const size = BYTES[t.datatype];
      if (!size) throw new Error(`binary load for ${t.datatype} is not supported`);
      const buf = Buffer.alloc(values.length * size);
      values.forEach((v, i) => {
        if (t.datatype === 'FP32') buf.writeFloatLE(v as number, i * 4);
        else if (t.datatype === 'FP64') buf.writeDoubleLE(v as number, i * 8);
        else if (t.datatype === 'INT64') buf.writeBigInt64LE(BigInt(v as number), i * 8);
        else if (t.datatype === 'INT32') buf.writeInt32LE(v as number, i * 4);
        else buf.writeUIntLE(Number(v), i * size, size);
      });
      parts.push(buf);
      return { name: t.name, datatype: t.datatype, shape, parameters: { binary_data_size: buf.byteLength } };
    }),
    parameters: { binary_data_output: true },
  };
  const head = Buffer.from(JSON.stringify(doc));
  return { bytes: Buffer.concat([head, ...parts]), headerLength: head.byteLength };
}

export async function buildTarget(o: TargetOptions, variants = 16): Promise<Target> {
  const u = new URL(o.url);
  const metaRes = await fetch(new URL(`/v2/models/${encodeURIComponent(o.model)}`, u), { headers: o.headers });
  if (!metaRes.ok) throw new Error(`GET /v2/models/${o.model} answered ${metaRes.status}: ${(await metaRes.text()).slice(0, 200)}`);
  const meta = (await metaRes.json()) as { inputs: TensorMeta[] };
  const path = `/v2/models/${encodeURIComponent(o.model)}/infer`;
  const requests = Array.from({ length: variants }, (_, k) => {
    const b = body(meta.inputs, o.batch, o.binary, k + 1);
    const head = [
      `POST ${path} HTTP/1.1`,
      `Host: ${u.host}`,
      `Content-Type: ${o.binary ? 'application/octet-stream' : 'application/json'}`,
      `Content-Length: ${b.bytes.byteLength}`,
      ...(b.headerLength !== undefined ? [`Inference-Header-Content-Length: ${b.headerLength}`] : []),
      ...Object.entries(o.headers ?? {}).map(([k2, v]) => `${k2}: ${v}`),
      '',
      '',
    ].join('\r\n');
    return Buffer.concat([Buffer.from(head), b.bytes]);
  });
  return { host: u.hostname, port: Number(u.port || 80), requests };
}
