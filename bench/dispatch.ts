/**
 * Dispatch cost, inline (on the I/O thread) vs pool (worker thread via the shared arena), for
 * demo-logistic and demo-onnx at request batch sizes 1/16/64/512:
 *  - sequential: one request at a time, microseconds per request (the hop's latency);
 *  - concurrent: 64 requests in flight, predictions per second (dynamic batching at work).
 * Checks every variant's answers against the reference first.
 */
import { Engine } from '../src/service/engine.js';
import { check, table } from './util.js';
import { benchRepo, closedLoop, demoAnswer, features } from './engine-util.js';

const BATCHES = [1, 16, 64, 512];

export async function runDispatch(opts: { ms?: number } = {}): Promise<Record<string, number>> {
  const ms = opts.ms ?? 1000;
  const repo = await benchRepo();
  const engine = await Engine.start({ modelRepository: repo.root, workers: 1 });
  const figures: Record<string, number> = {};
  try {
    // Correctness: every variant answers the documented formula (logistic) or agrees with the
    // other dispatch of the same graph (onnx).
    const probe = features(8, 99);
    for (const model of ['demo-logistic', 'demo-logistic-pool']) {
      const r = await engine.infer({ model, inputs: [probe] });
      for (let i = 0; i < 8; i++) check(Math.abs((r.outputs[0]!.data[i] as number) - demoAnswer(probe.data as Float32Array, i * 100)) < 1e-5, `${model} row ${i}`);
    }
    const a = await engine.infer({ model: 'demo-onnx', inputs: [probe] });
    const b = await engine.infer({ model: 'demo-onnx-inline', inputs: [probe] });
    for (let i = 0; i < 8; i++) check(Math.abs((a.outputs[0]!.data[i] as number) - (b.outputs[0]!.data[i] as number)) < 1e-6, `demo-onnx pool vs inline row ${i}`);

    const rows: Array<Array<string | number>> = [];
    for (const [label, inline, pool] of [['demo-logistic', 'demo-logistic', 'demo-logistic-pool'], ['demo-onnx', 'demo-onnx-inline', 'demo-onnx']] as const) {
      for (const batch of BATCHES) {
        const reqs = Array.from({ length: 64 }, (_, k) => ({ model: '', inputs: [features(batch, k + 1)] }));
        const result: Record<string, { usPerReq: number; predPerSec: number }> = {};
        for (const [mode, model] of [['inline', inline], ['pool', pool]] as const) {
          const rs = reqs.map((r) => ({ ...r, model }));
          await closedLoop(engine, rs, 1, 100); // warm-up
          const seq = await closedLoop(engine, rs, 1, ms / 2);
          const conc = await closedLoop(engine, rs, 64, ms);
          check(seq.failures === 0 && conc.failures === 0, `${model} failures`);
          result[mode] = { usPerReq: (seq.seconds * 1e6) / seq.requests, predPerSec: conc.predictions / conc.seconds };
          figures[`${label}.${mode}.b${batch}.predPerSec`] = result[mode]!.predPerSec;
          figures[`${label}.${mode}.b${batch}.usPerReq`] = result[mode]!.usPerReq;
        }
        rows.push([label, batch, result.inline!.usPerReq, result.pool!.usPerReq, result.inline!.predPerSec, result.pool!.predPerSec]);
      }
    }
    table('Dispatch: inline vs pool (1 worker). Sequential us/request; concurrent (64 in flight) predictions/s', ['model', 'rows/req', 'inline us', 'pool us', 'inline pred/s', 'pool pred/s'], rows);
  } finally {
    await engine.close();
    await repo.cleanup();
  }
  return figures;
}
