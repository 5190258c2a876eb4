/**
 * `sluice predict`: streams a file of rows through a model and writes one JSON line of outputs
 * per row, in order, with constant memory: a bounded window of batches in flight, answers
 * re-ordered in a bounded buffer, and writes that wait for the output file to drain. Runs the
 * model in-process (the local repository) or against a server's WebSocket stream (--url).
 */
import { once } from 'node:events';
import { constants, createWriteStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { Packr } from 'msgpackr';
import { WebSocket } from 'undici';
import { SluiceError } from '../errors.js';
import type { TensorSpec } from '../model/manifest.js';
import { arrayClassOf, F32_MAX, typedFromBytes, type Tensor } from '../model/tensor.js';
import { Engine } from '../service/engine.js';
import type { InferResponse, ModelMetadata } from '../service/types.js';
import { decodeTensorData, encodeTensorData } from '../frontend/codec/tensor-json.js';
import { Progress } from './progress.js';
import { readRows, type RowBatch } from './rows.js';

export interface PredictOptions {
  model: string;
  input: string;
  output: string;
  url?: string;
  batch: number;
  window: number;
  key?: string;
  quiet?: boolean;
  /** In-process engine overrides (model repository, workers). */
  engine?: Parameters<typeof Engine.start>[0];
}

interface Predictor {
  metadata(): Promise<ModelMetadata>;
  infer(inputs: Tensor[]): Promise<InferResponse>;
  close(): Promise<void>;
}

async function localPredictor(o: PredictOptions): Promise<Predictor> {
  const engine = await Engine.start({ startupModels: [o.model], ...o.engine });
  if (!engine.modelReady(o.model)) {
    const why = (await engine.repositoryIndex()).find((m) => m.name === o.model)?.reason ?? 'it is not in the repository';
    await engine.close();
    throw new SluiceError('MODEL_NOT_FOUND', `model ${o.model} could not be loaded from ${engine.config.modelRepository}: ${why}`);
  }
  return {
    metadata: async () => engine.modelMetadata(o.model),
    infer: (inputs) => engine.infer({ model: o.model, inputs }),
    close: () => engine.close(),
  };
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

async function remotePredictor(o: PredictOptions): Promise<Predictor> {
  const base = o.url!.replace(/\/$/, '');
  const headers = o.key ? { authorization: `Bearer ${o.key}` } : undefined;
  const metaRes = await fetch(`${base}/v2/models/${encodeURIComponent(o.model)}`, { headers });
  if (!metaRes.ok) {
    const body = (await metaRes.json().catch(() => ({}))) as { error?: string; code?: string };
    throw new SluiceError(body.code === 'MODEL_NOT_FOUND' ? 'MODEL_NOT_FOUND' : 'INVALID_ARGUMENT', `${o.url}: ${body.error ?? metaRes.statusText}`);
  }
  const meta = (await metaRes.json()) as ModelMetadata;
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v2/stream`, headers ? { headers } as never : undefined);
  ws.binaryType = 'arraybuffer';
  const waiting = new Map<number, { resolve(r: InferResponse): void; reject(e: Error): void }>();
  let seq = 0;
  let broken: Error | undefined;
  ws.addEventListener('message', (ev) => {
    const a = packr.unpack(Buffer.from(ev.data as ArrayBuffer)) as { id: number; error?: string; code?: string; model_name: string; model_version: string; outputs: Array<{ name: string; datatype: string; shape: number[]; data: Uint8Array }> };
    const w = waiting.get(a.id);
    if (!w) return;
    waiting.delete(a.id);
    if (a.error) return w.reject(new SluiceError((a.code ?? 'INTERNAL') as 'INTERNAL', a.error));
    w.resolve({
      model: a.model_name, version: a.model_version,
      outputs: a.outputs.map((t) => {
        const Ctor = arrayClassOf(t.datatype as never)!;
        return { name: t.name, datatype: t.datatype as never, shape: t.shape, data: typedFromBytes(Ctor, t.data, t.data.byteLength / Ctor.BYTES_PER_ELEMENT, true) };
      }),
    });
  });
  const fail = (e: Error) => {
    broken = e;
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  ws.addEventListener('close', () => fail(new SluiceError('SHUTTING_DOWN', 'the server closed the stream')));
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new SluiceError('INVALID_ARGUMENT', `cannot open ${base}/v2/stream`)));
  });
  return {
    metadata: async () => meta,
    infer: (inputs) => new Promise((resolve, reject) => {
      if (broken) return reject(broken);
      const id = seq++;
      waiting.set(id, { resolve, reject });
      ws.send(packr.pack({ id, model: o.model, inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })) }));
    }),
    close: async () => {
      ws.close();
    },
  };
}

/** The common case, one FP32 input and rows of plain numbers, written straight into place. */
function fastFp32(batch: RowBatch, spec: TensorSpec, width: number): Tensor | undefined {
  const data = new Float32Array(batch.rows.length * width);
  for (let r = 0; r < batch.rows.length; r++) {
    const row = batch.rows[r];
    if (!Array.isArray(row) || row.length !== width) return undefined;
    const at = r * width;
    for (let i = 0; i < width; i++) {
      const v = row[i];
      if (typeof v !== 'number' || !(v <= F32_MAX && v >= -F32_MAX)) return undefined;
      data[at + i] = v;
    }
  }
  return { name: spec.name, datatype: 'FP32', shape: [batch.rows.length, ...spec.shape.slice(1)], data };
}

/** Builds the input tensors of a batch of rows; errors name the file line. */
function tensorsOf(batch: RowBatch, specs: TensorSpec[]): Tensor[] {
  const only = specs[0]!;
  if (specs.length === 1 && only.datatype === 'FP32' && only.shape.slice(1).every((d) => d > 0)) {
    // Anything unusual (a bad value, a short row) falls through to the checking path below,
    // which says which line is wrong.
    const fast = fastFp32(batch, only, only.shape.slice(1).reduce((a, b) => a * b, 1));
    if (fast) return [fast];
  }
  return specs.map((spec) => {
    const shape = [batch.rows.length, ...spec.shape.slice(1)];
    if (shape.some((d) => d < 0)) throw new SluiceError('INVALID_ARGUMENT', `input ${spec.name} has variable dimensions; sluice predict needs fixed rows`);
    const width = shape.slice(1).reduce((a, b) => a * b, 1);
    const rows = batch.rows.map((r, i) => {
      const v = Array.isArray(r) ? (specs.length === 1 ? r : undefined) : (r as Record<string, unknown>)[spec.name];
      const flat = Array.isArray(v) ? (v.length > 0 && Array.isArray(v[0]) ? (v as unknown[]).flat(8) : v) : undefined;
      if (!flat || flat.length !== width) {
        throw new SluiceError('SHAPE_MISMATCH', `line ${batch.lines[i]}: input ${spec.name} needs ${width} values, got ${flat ? flat.length : 'none'}`);
      }
      return flat;
    });
    try {
      return { name: spec.name, datatype: spec.datatype, shape, data: decodeTensorData(rows.flat(), spec.datatype, [rows.length * width], spec.name) };
    } catch (e) {
      const m = /element (\d+)/.exec((e as Error).message);
      const line = m ? batch.lines[Math.floor(Number(m[1]) / width)] : batch.firstLine;
      throw new SluiceError((e as SluiceError).code ?? 'INVALID_TENSOR_VALUE', `line ${line}: ${(e as Error).message}`);
    }
  });
}

/** One JSON line per row: {"<output>": value-or-array, ...}. */
function linesOf(res: InferResponse, rows: number): string {
  const cols = res.outputs.map((t) => {
    const width = t.data.length / rows;
    const out: string[] = [];
    for (let r = 0; r < rows; r++) {
      const s = encodeTensorData(t.data.subarray(r * width, (r + 1) * width) as Float32Array, t.datatype);
      out.push(width === 1 ? s.slice(1, -1) : s);
    }
    return { key: JSON.stringify(t.name), values: out };
  });
  let text = '';
  for (let r = 0; r < rows; r++) text += '{' + cols.map((c) => `${c.key}:${c.values[r]}`).join(',') + '}\n';
  return text;
}

export interface PredictResult {
  rows: number;
  seconds: number;
  version: string;
}

export async function predict(o: PredictOptions): Promise<PredictResult> {
  try {
    await access(o.input, constants.R_OK);
  } catch {
    throw new SluiceError('INVALID_ARGUMENT', `cannot read input file ${o.input}`);
  }
  const predictor = o.url ? await remotePredictor(o) : await localPredictor(o);
  const out = createWriteStream(o.output);
  const progress = new Progress(`predict ${o.model}`);
  const t0 = performance.now();
  let rows = 0;
  let version = '';
  try {
    const meta = await predictor.metadata();
    const source = readRows(o.input, o.batch);
    // A window of batches in flight; answers are written in file order.
    const inFlight: Array<{ rows: number; answer: Promise<InferResponse> }> = [];
    const writeNext = async () => {
      const head = inFlight.shift()!;
      const res = await head.answer;
      version = res.version;
      if (!out.write(linesOf(res, head.rows))) await once(out, 'drain');
      rows += head.rows;
      if (!o.quiet) progress.update(rows, 'rows', source.fraction());
    };
    for await (const batch of source.batches) {
      const inputs = tensorsOf(batch, meta.inputs);
      const answer = predictor.infer(inputs);
      answer.catch(() => undefined);
      inFlight.push({ rows: batch.rows.length, answer: answer.catch((e: Error) => {
        throw new SluiceError((e as SluiceError).code ?? 'INTERNAL', `lines ${batch.firstLine}-${batch.lines[batch.lines.length - 1]}: ${e.message}`);
      }) });
      if (inFlight.length >= o.window) await writeNext();
    }
    while (inFlight.length > 0) await writeNext();
  } finally {
    if (!o.quiet) progress.done();
    out.end();
    await once(out, 'close').catch(() => undefined);
    await predictor.close();
  }
  return { rows, seconds: (performance.now() - t0) / 1000, version };
}
