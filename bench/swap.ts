/**
 * Hot swap under load: traffic at a fixed rate (default 5,000 requests/s per model) on an
 * inline and a pooled logistic model while new versions are loaded back to back. Every answer is checked against the version that
 * the response names (version v computes sigmoid(x . w * v/10 + 0.25)); latency goes into HDR
 * histograms, one per model, for the same traffic with and without swaps.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { writeModelVersion } from '../src/repository/write.js';
import { Engine } from '../src/service/engine.js';
import type { InferRequest } from '../src/service/types.js';
import { check, table } from './util.js';
import { features, W } from './engine-util.js';
import { startHiccupMeter } from './hiccup.js';

const MODELS = ['swap-inline', 'swap-pool'] as const;

async function writeVersions(root: string, count: number): Promise<void> {
  for (let v = 1; v <= count; v++) {
    for (const name of MODELS) {
      await writeModelVersion(root, {
        name,
        version: String(v),
        kind: 'logistic',
        signature: {
          inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 100] }],
          outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
        },
        max_batch_size: 64,
        dispatch: name === 'swap-inline' ? 'inline' : 'pool',
      }, 'weights.json', Buffer.from(JSON.stringify({ weights: [W.map((w) => w * (v / 10))], bias: [0.25] })));
    }
  }
}

interface Phase {
  histograms: Record<string, hdr.Histogram>;
  ok: number;
  failed: number;
  wrong: number;
  versions: Set<string>;
}

/**
 * Offers `rate` requests per second per model (paced by a 1 ms timer, as a service's traffic
 * arrives) until `done()` says stop, and waits for the answers. Latency is measured from each
 * request's send to its answer.
 */
async function drive(engine: Engine, rate: number, done: () => boolean): Promise<Phase> {
  const phase: Phase = { histograms: {}, ok: 0, failed: 0, wrong: 0, versions: new Set() };
  // Pre-built requests with precomputed x . w per row, so checking an answer is cheap.
  const reqs = Array.from({ length: 256 }, (_, k) => {
    const x = features(1 + (k % 4), k + 1);
    const dots = Array.from({ length: x.shape[0]! }, (_, r) => W.reduce((s, w, i) => s + w * (x.data[r * 100 + i] as number), 0));
    return { x, dots };
  });
  for (const m of MODELS) phase.histograms[m] = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: 3 });
  let k = 0;
  const inFlight = new Set<Promise<void>>();
  const send = (model: string) => {
    const h = phase.histograms[model]!;
    const { x, dots } = reqs[k++ % reqs.length]!;
    const req: InferRequest = { model, inputs: [x] };
    const t0 = process.hrtime.bigint();
    const p = engine.infer(req).then(
      (r) => {
        h.recordValue(Number(process.hrtime.bigint() - t0) / 1000);
        phase.ok++;
        phase.versions.add(`${model}@${r.version}`);
        const scale = Number(r.version) / 10;
        for (let i = 0; i < dots.length; i++) {
          const want = 1 / (1 + Math.exp(-(dots[i]! * scale + 0.25)));
          if (Math.abs((r.outputs[0]!.data[i] as number) - want) > 1e-5) phase.wrong++;
        }
      },
      () => {
        phase.failed++;
      },
    );
    inFlight.add(p);
    void p.then(() => inFlight.delete(p));
  };
  const start = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      if (done()) {
        clearInterval(tick);
        resolve();
        return;
      }
      // Catch up to the schedule: rate per model per second since the start.
      const due = Math.floor(((performance.now() - start) / 1000) * rate);
      for (; sent < due; sent++) for (const m of MODELS) send(m);
    }, 1);
  });
  await Promise.all(inFlight);
  return phase;
}

export async function runSwap(opts: { swaps?: number; rate?: number } = {}): Promise<Record<string, number>> {
  const swaps = opts.swaps ?? 60;
  const rate = opts.rate ?? 5000;
  const root = await mkdtemp(path.join(tmpdir(), 'sluice-swap-'));
  await writeVersions(root, swaps + 1);
  const engine = await Engine.start({ modelRepository: root, workers: 1, startupModels: 'none' });
  const figures: Record<string, number> = {};
  try {
    for (const m of MODELS) await engine.load(m, { version: '1' });
    // Baseline: the same traffic for a fixed time with no swaps.
    let until = performance.now() + 2000;
    const hiccups = startHiccupMeter();
    const base = await drive(engine, rate, () => performance.now() > until);
    // Swapping: load versions 2..swaps+1 of both models back to back while the traffic runs.
    let swapping = true;
    const traffic = drive(engine, rate, () => !swapping);
    const t0 = performance.now();
    for (let v = 2; v <= swaps + 1; v++) {
      await Promise.all(MODELS.map((m) => engine.load(m, { version: String(v) })));
    }
    const swapMs = performance.now() - t0;
    swapping = false;
    const during = await traffic;
    const platform = await hiccups.stop();
    until = 0;
    check(base.failed === 0 && base.wrong === 0, `baseline: ${base.failed} failed, ${base.wrong} wrong`);
    check(during.failed === 0, `${during.failed} predictions failed during swaps`);
    check(during.wrong === 0, `${during.wrong} predictions disagree with the version they name`);
    for (const m of MODELS) check(engine.heldVersions(m).length === 1, `${m}: replaced versions not freed`);
    const rows: Array<Array<string | number>> = [];
    for (const [label, phase] of [['no swaps', base], [`${swaps} swaps`, during]] as const) {
      for (const m of MODELS) {
        const h = phase.histograms[m]!;
        rows.push([label, m, h.totalCount, h.getValueAtPercentile(50), h.getValueAtPercentile(99), h.getValueAtPercentile(99.9), h.getValueAtPercentile(99.99), h.maxValue]);
        const key = `${label === 'no swaps' ? 'base' : 'swap'}.${m}`;
        figures[`${key}.p99_99us`] = h.getValueAtPercentile(99.99);
        figures[`${key}.p99us`] = h.getValueAtPercentile(99);
      }
    }
    rows.push(['(platform)', 'hiccup meter', platform.count, platform.p50, platform.p99, platform.p999, '', platform.max]);
    figures.hiccupMaxUs = platform.max;
    table(`Hot swap at ${rate} req/s per model: ${swaps} swaps of 2 models in ${swapMs.toFixed(0)} ms, ${during.ok} predictions during swaps, 0 failed, ${during.versions.size} model versions answered; latency in us`,
      ['phase', 'model', 'count', 'p50', 'p99', 'p99.9', 'p99.99', 'max'], rows);
  } finally {
    await engine.close();
    await rm(root, { recursive: true, force: true });
  }
  return figures;
}
