/**
 * The canary judge (issue #15): is a canary healthy compared with the stable version over the
 * same window? Like Kayenta's, each check pairs a threshold with a statistical test, so that a
 * small sample neither fails nor passes a step by chance:
 *   - errors: unhealthy when the canary's error rate exceeds the stable one's by more than
 *     `maxErrorIncrease` AND an exact one-sided binomial test says the canary's rate is above
 *     that tolerated rate (stable + maxErrorIncrease; p < alpha). The stable version carries
 *     nearly all the traffic, so its rate is taken as known; exact, because a canary's first
 *     seconds at 1% are a few dozen requests, where a z-test would fail one error in five;
 *   - latency: unhealthy when the canary's p99 or p50 exceeds `maxP99Ratio` x the stable one's
 *     AND a one-sided Mann-Whitney test on the two latency histograms says the canary's
 *     latencies tend to be larger (p < alpha). The median too: a slow canary sharing workers
 *     with the stable version lengthens the stable version's tail as well (requests queue
 *     behind its slow ones), which can hide it from a p99 ratio alone, never from the medians.
 *   - prediction drift: unhealthy when the Kolmogorov-Smirnov distance between the canary's and
 *     the stable version's sampled predictions (each request's mean first output, as the drift
 *     monitor samples them: SLUICE_DRIFT_SAMPLE_RATE) exceeds `maxPredictionKs` AND the two-sample
 *     KS test rejects equal distributions (p < alpha). Both versions answer the same mix of
 *     traffic in the same window (a unit hash splits it), so a healthy canary's predictions are
 *     distributed as the stable one's. It judges only with `minPredictions` samples of each; short
 *     of them it is inconclusive WITHOUT holding the step (how many come depends on the sampling
 *     rate, which may be 0: the drift check can stop a canary, never stall one).
 * A check passes only with at least `minRequests` requests of each version in the window; below
 * that it is inconclusive (the step waits). Latency also fails only with `minRequests` candidate
 * answers (errors fail as soon as the exact test is sure: a failing canary must stop at once). The verdict is unhealthy if any check fails, healthy
 * if every check passes, inconclusive otherwise. Pure: the controller supplies the windows.
 */
import { ksTwoSample } from '../../analyze/ks.js';
import { mannWhitney, type Bins } from '../../analyze/mann-whitney.js';
import binomialCdf from '@stdlib/stats-base-dists-binomial-cdf';
import { DEFAULT_CHECKS, type CanaryChecks } from './checks.js';

export interface VersionWindow {
  requests: number;
  errors: number;
  /** Latencies (ms) of the window's answers as (value, count) bins, e.g. an HDR histogram's. */
  latency: Bins;
  /** The window's p50 and p99 latency (ms), null without answers. */
  p50: number | null;
  p99: number | null;
  /** Sampled predictions in the window (absent: none known, e.g. a blue-green baseline). */
  predictions?: ArrayLike<number>;
}

export type CheckState = 'passed' | 'failed' | 'inconclusive';

export interface CheckResult {
  name: 'errors' | 'latency' | 'drift';
  state: CheckState;
  detail: string;
}

export interface Verdict {
  verdict: 'healthy' | 'unhealthy' | 'inconclusive';
  checks: CheckResult[];
  /** One line: the failed checks' details, or why it is inconclusive. */
  reason: string;
}

function fmt(x: number | null, digits = 3): string {
  return x === null ? '-' : Number(x.toPrecision(digits)).toString();
}

function errorCheck(stable: VersionWindow, canary: VersionWindow, c: CanaryChecks): CheckResult {
  const rs = stable.requests > 0 ? stable.errors / stable.requests : 0;
  const rc = canary.requests > 0 ? canary.errors / canary.requests : 0;
  const tolerated = Math.min(1, rs + c.maxErrorIncrease);
  // P(X >= errors) for X ~ Binomial(canary requests, tolerated rate).
  const p = canary.errors === 0 ? 1 : 1 - binomialCdf(canary.errors - 1, canary.requests, tolerated);
  const detail = `error rate canary ${fmt(rc)} vs stable ${fmt(rs)} (n ${canary.requests} / ${stable.requests}, p ${fmt(p)} that it is within ${fmt(tolerated)})`;
  if (rc - rs > c.maxErrorIncrease && p < c.alpha) return { name: 'errors', state: 'failed', detail };
  if (Math.min(stable.requests, canary.requests) < c.minRequests) return { name: 'errors', state: 'inconclusive', detail: `${detail}: fewer than ${c.minRequests} requests` };
  return { name: 'errors', state: 'passed', detail };
}

function ratioOf(a: number | null, b: number | null): number | null {
  return a !== null && b !== null && b > 0 ? a / b : null;
}

function latencyCheck(stable: VersionWindow, canary: VersionWindow, c: CanaryChecks): CheckResult {
  const ratio = ratioOf(canary.p99, stable.p99);
  const median = ratioOf(canary.p50, stable.p50);
  const mw = mannWhitney(canary.latency, stable.latency, 'greater');
  const detail = `p99 canary ${fmt(canary.p99)} ms vs stable ${fmt(stable.p99)} ms (ratio ${fmt(ratio)}), p50 ratio ${fmt(median)}, Mann-Whitney one-sided p ${fmt(mw.p)}`;
  const slower = (ratio !== null && ratio > c.maxP99Ratio) || (median !== null && median > c.maxP99Ratio);
  // Unlike errors, latency fails only on `minRequests` candidate answers: a version's first
  // answers after loading are slow (cold code paths), and a handful of them would pass the rank
  // test and fail a healthy canary.
  if (slower && mw.p !== null && mw.p < c.alpha && canary.requests >= c.minRequests) return { name: 'latency', state: 'failed', detail };
  if (Math.min(stable.requests, canary.requests) < c.minRequests || ratio === null) return { name: 'latency', state: 'inconclusive', detail: `${detail}: fewer than ${c.minRequests} requests` };
  return { name: 'latency', state: 'passed', detail };
}

function driftCheck(stable: VersionWindow, canary: VersionWindow, c: CanaryChecks): CheckResult {
  const ns = stable.predictions?.length ?? 0;
  const nc = canary.predictions?.length ?? 0;
  if (Math.min(ns, nc) < c.minPredictions) {
    return { name: 'drift', state: 'inconclusive', detail: `${nc} / ${ns} sampled predictions, fewer than ${c.minPredictions}: not judged` };
  }
  const ks = ksTwoSample(canary.predictions!, stable.predictions!);
  const detail = `predictions canary vs stable: KS distance ${fmt(ks.statistic)} (p ${fmt(ks.p)}, n ${nc} / ${ns})`;
  if (ks.statistic > c.maxPredictionKs && ks.p < c.alpha) return { name: 'drift', state: 'failed', detail: `${detail} > ${c.maxPredictionKs}` };
  return { name: 'drift', state: 'passed', detail };
}

export function judge(stable: VersionWindow, canary: VersionWindow, checks: CanaryChecks = DEFAULT_CHECKS): Verdict {
  const results = [errorCheck(stable, canary, checks), latencyCheck(stable, canary, checks), driftCheck(stable, canary, checks)];
  const failed = results.filter((r) => r.state === 'failed');
  if (failed.length > 0) return { verdict: 'unhealthy', checks: results, reason: failed.map((f) => `${f.name}: ${f.detail}`).join('; ') };
  // An unjudged drift check does not hold a step (see the header).
  const waiting = results.filter((r) => r.state === 'inconclusive' && r.name !== 'drift');
  if (waiting.length > 0) return { verdict: 'inconclusive', checks: results, reason: waiting.map((w) => `${w.name}: ${w.detail}`).join('; ') };
  return { verdict: 'healthy', checks: results, reason: 'every check passed' };
}
