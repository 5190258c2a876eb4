/**
 * Bandit routes on the control plane: each variant's rewards (joined feedback of the decisions
 * the route made) feed a posterior, and every `update_ms` the route's weights are recomputed and
 * published in its state cell, which every I/O thread's Assigner reads per request.
 *
 * Weights: the spec's own until every variant has `burn_in` rewards; then batched Thompson
 * sampling (probability matching): variant v gets min_share + (1 - K * min_share) * P(v is
 * best), P estimated from 20,000 joint posterior draws in the native sampler. Picking from those
 * weights is choosing by Thompson sampling at the posterior of the last update, and the weight
 * is the exact propensity logged with the decision.
 *
 * Posteriors: Bernoulli rewards (in [0, 1]) Beta(1 + sum r, 1 + sum (1 - r)); Gaussian rewards
 * Normal(mean, s^2 / n) with s pooled over the variants. Statistics are kept per (variant name,
 * version), so a route republished with the same variants (a weight edited) keeps its evidence.
 */
import { log } from '../log.js';
import { createRng, type Rng } from '../native.js';
import { StateCell } from '../learn/state-cell.js';
import type { JoinedFeedback } from '../learn/feedback.js';
import type { RouteSpec } from './route.js';

const DRAWS = 20_000;
/** No weight is published below this (a pick must never carry propensity 0). */
const MIN_WEIGHT = 1e-6;

interface VariantStats {
  n: number;
  sum: number;
  sumsq: number;
}

interface Live {
  spec: RouteSpec;
  gen: number;
  cell: StateCell;
  stats: VariantStats[];
  timer: NodeJS.Timeout;
  /** Rewards refused (a Bernoulli route's reward outside [0, 1]). */
  refused: number;
}

function statsKey(model: string, name: string, version: string): string {
  return `${model}\u0000${name}\u0000${version}`;
}

export class RouteBandits {
  private readonly live = new Map<string, Live>();
  /** Evidence by (model, variant, version), kept across republications of a model's route. */
  private readonly evidence = new Map<string, VariantStats>();
  private readonly rng: Rng = createRng(Math.floor(Math.random() * 2 ** 52));

  /**
   * Starts (or restarts, for a new generation) the bandit of `model`'s route; returns the state
   * cell to publish with the route, holding the first weights.
   */
  start(model: string, spec: RouteSpec, gen: number): SharedArrayBuffer {
    this.stop(model);
    const stats = spec.variants.map((v) => {
      const k = statsKey(model, v.name, v.version);
      let s = this.evidence.get(k);
      if (!s) this.evidence.set(k, (s = { n: 0, sum: 0, sumsq: 0 }));
      return s;
    });
    const cell = new StateCell(spec.variants.length);
    const l: Live = { spec, gen, cell, stats, refused: 0, timer: setInterval(() => this.update(l), spec.bandit!.updateMs) };
    l.timer.unref();
    this.live.set(model, l);
    this.update(l);
    return cell.buffer;
  }

  stop(model: string): void {
    const l = this.live.get(model);
    if (!l) return;
    clearInterval(l.timer);
    this.live.delete(model);
  }

  close(): void {
    for (const m of [...this.live.keys()]) this.stop(m);
  }

  /** The feedback intake's subscriber: a reward of a decision some bandit route made. */
  readonly offer = (f: JoinedFeedback): void => {
    const d = f.decision;
    const l = this.live.get(d.model);
    if (!l) return;
    const i = l.spec.variants.findIndex((v) => v.name === d.variant && v.version === d.version);
    if (i < 0) return;
    if (l.spec.bandit!.reward === 'bernoulli' && !(f.reward >= 0 && f.reward <= 1)) {
      l.refused++;
      return;
    }
    const s = l.stats[i]!;
    s.n++;
    s.sum += f.reward;
    s.sumsq += f.reward * f.reward;
  };

  /**
   * The weights in force for `model`'s bandit route (for the admin API, the dashboard and
   * tests): `rewards` counts each variant's rewards, `rewardSums` adds them up (this replica's
   * feedback since the variant's evidence began).
   */
  weights(model: string): { gen: number; weights: number[]; rewards: number[]; rewardSums: number[]; refused: number } | undefined {
    const l = this.live.get(model);
    if (!l) return undefined;
    return { gen: l.gen, weights: [...l.cell.read().data], rewards: l.stats.map((s) => s.n), rewardSums: l.stats.map((s) => s.sum), refused: l.refused };
  }

  /** Recomputes and publishes `model`'s weights now (the interval does it every update_ms). */
  refresh(model: string): void {
    const l = this.live.get(model);
    if (l) this.update(l);
  }

  private update(l: Live): void {
    const w = weightsOf(l.spec, l.stats, this.rng);
    l.cell.publish(w, l.cell.counters().state + 1, l.stats.reduce((a, s) => a + s.n, 0));
  }
}

/** The weights a bandit route publishes, given its variants' evidence (see the file header). */
export function weightsOf(spec: RouteSpec, stats: VariantStats[], rng: Rng, draws = DRAWS): Float64Array {
  const b = spec.bandit!;
  const k = spec.variants.length;
  const w = new Float64Array(k);
  if (stats.some((s) => s.n < b.burnIn)) {
    spec.variants.forEach((v, i) => (w[i] = v.weight));
    return w;
  }
  const probs = new Float64Array(k);
  if (b.reward === 'bernoulli') {
    const alphas = Float64Array.from(stats, (s) => 1 + s.sum);
    const betas = Float64Array.from(stats, (s) => 1 + s.n - s.sum);
    rng.thompsonBeta(alphas, betas, draws, probs);
  } else {
    let ss = 0;
    let df = 0;
    for (const s of stats) {
      if (s.n < 2) continue;
      ss += s.sumsq - (s.sum * s.sum) / s.n;
      df += s.n - 1;
    }
    const sd = df > 0 && ss > 0 ? Math.sqrt(ss / df) : 1;
    const means = Float64Array.from(stats, (s) => (s.n > 0 ? s.sum / s.n : 0));
    const sds = Float64Array.from(stats, (s) => sd / Math.sqrt(Math.max(1, s.n)));
    rng.thompsonNormal(means, sds, draws, probs);
  }
  let total = 0;
  for (let i = 0; i < k; i++) {
    w[i] = Math.max(MIN_WEIGHT, b.minShare + (1 - k * b.minShare) * probs[i]!);
    total += w[i]!;
  }
  for (let i = 0; i < k; i++) w[i]! /= total;
  if (!w.every(Number.isFinite)) {
    log.warn('route bandit: weights not finite, keeping the spec weights');
    spec.variants.forEach((v, i) => (w[i] = v.weight));
  }
  return w;
}
