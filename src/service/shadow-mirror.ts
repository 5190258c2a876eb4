/**
 * Shadow traffic of one I/O thread: the requests a route mirrors to its shadow versions, run
 * after the caller's answer is sent, and their figures (src/routing/shadow.ts ShadowStats) by
 * model and version. The data plane owns one and lends it the version lookup, its admission
 * state and its `run`; nothing here is on the path of a request without shadows.
 */
import type { Manifest } from '../model/manifest.js';
import { checkInputs } from '../model/signature.js';
import type { Tensor } from '../model/tensor.js';
import type { PlaneRoute } from '../routing/plane-route.js';
import { SHADOW_MAX_IN_FLIGHT, ShadowStats, type ShadowSnapshot } from '../routing/shadow.js';
import type { BatchTensor } from '../worker/runtimes/index.js';
import type { InferRequest, InferResponse } from './types.js';

/** What the mirror needs of a loaded version. */
export interface MirroredVersion {
  manifest: Manifest;
  retired: boolean;
}

export interface MirrorHost<V extends MirroredVersion> {
  /** The live version `version` of `model` on this thread, if any. */
  version(model: string, version: string): V | undefined;
  /** Whether admission takes all work now (a shedding thread drops shadow copies first of all). */
  accepting(): boolean;
  closing(): boolean;
  /** Runs checked inputs on `v` without a deadline (the data plane's run). */
  run(v: V, ordered: Tensor[], rows: number): { outs: BatchTensor[] } | Promise<BatchTensor[]>;
}

export class ShadowMirror<V extends MirroredVersion> {
  private readonly stats = new Map<string, ShadowStats>();
  private inFlight = 0;

  constructor(private readonly host: MirrorHost<V>) {}

  /**
   * Runs the request on the route's shadows that pick it, after the caller's answer is sent
   * (setImmediate: the answer is written synchronously before it runs). Dropped, first of all
   * work, while admission is shedding or too many shadows run on this thread.
   */
  mirror(route: PlaneRoute, req: InferRequest, res: InferResponse, rows: number, callerMs: number): void {
    const shadows = route.spec.shadows;
    for (let i = 0; i < shadows.length; i++) {
      if (!route.assigner.shadowPick(i)) continue;
      const version = shadows[i]!.version;
      const stats = this.statsOf(req.model, version);
      const v = this.host.version(req.model, version);
      if (!v || v.retired || !this.host.accepting() || this.inFlight >= SHADOW_MAX_IN_FLIGHT) {
        stats.dropped++;
        continue;
      }
      stats.mirrored++;
      this.inFlight++;
      // Copies: the request's and the answer's buffers are reused once the answer is sent.
      const inputs = req.inputs.map((t) => ({ ...t, data: t.data.slice() as typeof t.data }));
      const first = res.outputs[0];
      const callerOut = first ? { ...first, data: first.data.slice() as typeof first.data } : undefined;
      setImmediate(() => {
        const t = performance.now();
        const done = (outs: BatchTensor[] | undefined) => {
          this.inFlight--;
          if (outs === undefined) {
            stats.errors++;
            return;
          }
          const o = outs[0];
          stats.record(callerOut, o ? { name: '', datatype: v.manifest.signature.outputs[0]!.datatype, shape: o.shape, data: o.data } : undefined, callerMs, performance.now() - t);
        };
        try {
          if (v.retired || this.host.closing()) return done(undefined);
          const { ordered } = checkInputs(v.manifest, inputs);
          const out = this.host.run(v, ordered, rows);
          if (out instanceof Promise) out.then(done, () => done(undefined));
          else done(out.outs);
        } catch {
          done(undefined);
        }
      });
    }
  }

  /** This thread's figures for a model (the control plane merges every thread's). */
  snapshots(model: string): ShadowSnapshot[] {
    return [...this.stats.values()].filter((s) => s.model === model).map((s) => s.snapshot());
  }

  /** Prometheus lines of this thread's shadow counters (summed over threads by the merge). */
  metricLines(): string[] {
    return [
      '# HELP sluice_shadow_requests_total Requests mirrored to shadow versions, by outcome (mirrored, dropped, errors, agreeing).',
      '# TYPE sluice_shadow_requests_total counter',
      ...[...this.stats.values()].flatMap((t) => (['mirrored', 'dropped', 'errors', 'agreeing'] as const).map((k) =>
        `sluice_shadow_requests_total{model=${JSON.stringify(t.model)},version=${JSON.stringify(t.version)},outcome="${k}"} ${t[k]}`)),
    ];
  }

  private statsOf(model: string, version: string): ShadowStats {
    const key = `${model}\0${version}`;
    let s = this.stats.get(key);
    if (!s) {
      s = new ShadowStats(model, version);
      this.stats.set(key, s);
    }
    return s;
  }
}
