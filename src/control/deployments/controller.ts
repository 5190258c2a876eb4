/**
 * What a deployment does next, from one look (pure; loop.ts supplies the figures and applies it):
 *
 * canary     the judge compares the candidate with the stable version over the window since the
 *            step began (at most window_s): unhealthy -> roll back, whatever the step's age (on
 *            errors at once; on latency or drift once the failure has held for
 *            checks.confirm_s, the step waiting meanwhile: see confirmed()); healthy, the step
 *            at least step_min_s old and the candidate at least step_min_requests requests into
 *            it -> the next step, or at the last (100%) promote (auto_promote; otherwise it
 *            waits for `promote`); else wait.
 * blue-green the candidate has all traffic from the start; the judge compares it over the window
 *            with the stable version's figures from before the switch (the baseline): unhealthy
 *            (confirmed as for a canary) -> switch back (roll back) in one step; after bake_s
 *            without a failed check -> promote. An inconclusive bake (too little traffic) does
 *            not hold up the promotion: nothing failed.
 * shadow     after duration_s, the shadow report decides once min_compared answers were compared
 *            (or mirrored, for errors): agreement >= min_agreement, the shadow's error rate <=
 *            max_error_rate and p99 <= max_p99_ratio x the caller's -> promote; otherwise discard
 *            (rolled back, traffic never moved). Short of evidence it keeps running.
 */
import { judge, type Verdict, type VersionWindow } from './judge.js';
import type { DeploymentRecord, Transition } from './store.js';

export const CONTROLLER = 'sluice-deployments';

/** One shadow version's figures from the engine's shadow report. */
export interface ShadowFigures {
  mirrored: number;
  errors: number;
  compared: number;
  agreeing: number;
  shadowP99: number | null;
  callerP99: number | null;
}

export interface LookFigures {
  /** The stable version over the window (blue-green: the baseline from before the switch). */
  stable?: VersionWindow;
  candidate?: VersionWindow;
  shadow?: ShadowFigures;
}

export type Next = { transition: Transition; verdict: unknown } | { transition: null; verdict: unknown };

function t(action: Transition['action'], to: Transition['to'], reason: string, verdict: unknown, step?: number): Next {
  return { transition: { action, to, reason, actor: CONTROLLER, verdict, ...(step !== undefined ? { step } : {}) }, verdict };
}

function verdictJson(v: Verdict): Record<string, unknown> {
  return { verdict: v.verdict, reason: v.reason, checks: v.checks };
}

/** A latency or drift failure under watch, kept in the last verdict (so a replica taking over carries it on). */
interface Suspect {
  since: string;
  step_started_at: string;
}

/**
 * When the failing checks began to fail: the last verdict's suspicion if it is of this step
 * (its window), else now. One look at a failure that has not failed before starts the clock;
 * a look without a failure ends it (the next verdict carries no suspect).
 */
function failingSince(d: DeploymentRecord, now: number): number {
  const s = (d.lastVerdict as { suspect?: Partial<Suspect> } | null)?.suspect;
  if (!s || s.step_started_at !== d.stepStartedAt.toISOString() || typeof s.since !== 'string') return now;
  const t = Date.parse(s.since);
  return Number.isFinite(t) && t <= now ? t : now;
}

/**
 * Whether an unhealthy verdict rolls back now. Errors do at once: each is a failed request, and
 * the exact test cannot fail a candidate that fails no more often than the stable version.
 * Latency and drift must hold for checks.confirm_s: every look is a test at alpha over a window
 * that grows, and a healthy candidate fails one look of a step's many in about one rollout in
 * fifteen (simulated: test/control/deployment-repeated-looks.test.ts, 10 of 150 at 100 ms
 * looks), whereas a real fault persists as the evidence grows while a chance excursion fades.
 * Meanwhile the step waits, neither advancing nor promoting.
 */
function confirmed(d: DeploymentRecord, now: number, v: Verdict, verdict: Record<string, unknown>): Next {
  const failed = v.checks.filter((c) => c.state === 'failed');
  const since = failingSince(d, now);
  const held = (now - since) / 1000;
  const confirmS = d.spec.checks.confirmS;
  if (failed.some((c) => c.name === 'errors')) return t('rollback', 'rolled_back', v.reason, verdict);
  if (held >= confirmS) return t('rollback', 'rolled_back', confirmS > 0 ? `${v.reason} (failing for ${held.toFixed(1)} s)` : v.reason, verdict);
  const suspect: Suspect = { since: new Date(since).toISOString(), step_started_at: d.stepStartedAt.toISOString() };
  return { transition: null, verdict: { ...verdict, suspect, waiting: `${failed.map((c) => c.name).join(' and ')} failing for ${held.toFixed(1)} of ${confirmS} s before a rollback` } };
}

export function next(d: DeploymentRecord, now: number, f: LookFigures): Next {
  if (d.status !== 'running') return { transition: null, verdict: null };
  const age = (now - d.stepStartedAt.getTime()) / 1000;
  const s = d.spec;
  if (s.kind === 'shadow') return nextShadow(d, age, f.shadow);
  if (!f.stable || !f.candidate) return { transition: null, verdict: { verdict: 'inconclusive', reason: 'no figures yet' } };
  const v = judge(f.stable, f.candidate, s.checks);
  const verdict = verdictJson(v);
  if (v.verdict === 'unhealthy') return confirmed(d, now, v, verdict);
  if (s.kind === 'blue-green') {
    if (age < s.bakeS) return { transition: null, verdict };
    return s.autoPromote ? t('promote', 'promoted', `baked ${s.bakeS} s without a failed check`, verdict) : { transition: null, verdict: { ...verdict, waiting: 'promote' } };
  }
  if (v.verdict !== 'healthy') return { transition: null, verdict };
  if (age < s.stepMinS) return { transition: null, verdict: { ...verdict, waiting: `step ${d.step} is ${Math.floor(age)} of ${s.stepMinS} s old` } };
  if (f.candidate.requests < s.stepMinRequests) return { transition: null, verdict: { ...verdict, waiting: `${f.candidate.requests} of ${s.stepMinRequests} candidate requests in step ${d.step}` } };
  const last = d.step >= s.steps.length - 1;
  if (!last) return t('advance', 'running', `healthy at ${s.steps[d.step]! * 100}%: to ${s.steps[d.step + 1]! * 100}%`, verdict, d.step + 1);
  return s.autoPromote ? t('promote', 'promoted', 'healthy at 100%', verdict) : { transition: null, verdict: { ...verdict, waiting: 'promote' } };
}

function nextShadow(d: DeploymentRecord, age: number, f: ShadowFigures | undefined): Next {
  const r = d.spec.rule;
  if (!f) return { transition: null, verdict: { verdict: 'inconclusive', reason: 'no shadow figures yet' } };
  const agreement = f.compared > 0 ? f.agreeing / f.compared : null;
  const errorRate = f.mirrored > 0 ? f.errors / f.mirrored : null;
  const ratio = f.shadowP99 !== null && f.callerP99 !== null && f.callerP99 > 0 ? f.shadowP99 / f.callerP99 : null;
  const verdict = { compared: f.compared, agreement, error_rate: errorRate, p99_ratio: ratio };
  if (age < d.spec.durationS) return { transition: null, verdict };
  // Judged only on enough evidence: min_compared answers compared (agreement, latency), or
  // mirrored (errors: a shadow that fails every request compares none). Short of it, the
  // shadow keeps running (too little traffic is no verdict; the operator may abort).
  const compared = f.compared >= r.minCompared;
  const faults: string[] = [];
  if (compared && agreement !== null && agreement < r.minAgreement) faults.push(`agreement ${agreement.toFixed(4)} < ${r.minAgreement}`);
  if (f.mirrored >= r.minCompared && errorRate !== null && errorRate > r.maxErrorRate) faults.push(`error rate ${errorRate.toFixed(4)} > ${r.maxErrorRate}`);
  if (compared && ratio !== null && ratio > r.maxP99Ratio) faults.push(`p99 ratio ${ratio.toFixed(2)} > ${r.maxP99Ratio}`);
  if (faults.length > 0) return t('rollback', 'rolled_back', `discarded: ${faults.join('; ')}`, verdict);
  if (!compared) return { transition: null, verdict: { ...verdict, waiting: `${f.compared} of ${r.minCompared} answers compared` } };
  return d.spec.autoPromote ? t('promote', 'promoted', `shadowed ${d.spec.durationS} s: agreement, errors and latency within the rule`, verdict) : { transition: null, verdict: { ...verdict, waiting: 'promote' } };
}
