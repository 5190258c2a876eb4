/**
 * The text the `sluice experiments` commands print: the list, one experiment, and its results
 * (one block per metric, primary first, then the sample-ratio check and the decision). The
 * shapes are the admin API's JSON (src/service/experiments.ts, src/control/experiments/analysis.ts
 * `look()`), as far as the text reads them; every figure the JSON leaves null prints as "-".
 */
import { alignedLines } from './table.js';

type Interval = [number, number] | null;

export interface DecisionJson {
  action: string;
  variant?: string;
  reason: string;
}

export interface ExperimentListJson {
  name: string;
  model: string;
  status: string;
  started_at: string;
  stopped_at: string | null;
  variants: Array<{ name: string; version: string }>;
  outcome: DecisionJson | null;
  promoted_version: string | null;
  decision: DecisionJson | null;
}

export interface ExperimentJson {
  name: string;
  model: string;
  status: string;
  spec: {
    variants: Array<{ name: string; version: string; weight: number }>;
    control: string;
    assignment: string;
    primary: MetricSpecJson;
    secondary: MetricSpecJson[];
    guardrails: MetricSpecJson[];
    alpha: number;
    min_units: number;
    min_runtime_s: number;
    auto_promote: boolean;
    max_units: number | null;
    mde: { kind: string; value: number } | null;
  };
  outcome: DecisionJson | null;
  promoted_version: string | null;
  created_by: string;
  started_at: string;
  stopped_at: string | null;
  analyzed_at: string | null;
  last_results?: { decision?: DecisionJson } | null;
}

interface MetricSpecJson {
  name: string;
  kind: string;
  direction: string;
}

export interface TreatmentJson {
  variant: string;
  diff: number | null;
  ci: Interval;
  lift: number | null;
  lift_ci: Interval;
  p: number | null;
  p_holm: number | null;
  seq_p: number | null;
  seq_p_holm: number | null;
}

export interface MetricResultsJson {
  name: string;
  role: string;
  kind: string;
  direction: string;
  test: string;
  cuped_theta: number | null;
  variants: Array<{ name: string; n: number; mean: number | null }>;
  treatments: TreatmentJson[];
}

export interface ResultsJson {
  experiment: string;
  model: string;
  status: string;
  elapsed_s: number;
  alpha: number;
  assignment: string;
  variants: Array<{ name: string; version: string; control: boolean; weight: number | null; units: number; with_feedback: number }>;
  srm: { chi2: number | null; df: number; p: number | null; mismatch: boolean } | null;
  metrics: MetricResultsJson[];
  decision: DecisionJson;
  outcome: DecisionJson | null;
  promoted_version: string | null;
}

/** Four significant digits (0.3012, 1.234e-7); '-' for null. */
export function figure(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined ? '-' : String(Number(x.toPrecision(digits)));
}

/** A p-value: three significant digits, '<1e-12' below what the display can say. */
function pValue(x: number | null | undefined): string {
  if (x === null || x === undefined) return '-';
  return x < 1e-12 ? '<1e-12' : figure(x, 3);
}

/** A relative figure as a signed percentage: +33.3%. */
function percent(x: number | null | undefined): string {
  if (x === null || x === undefined) return '-';
  const p = Number((x * 100).toPrecision(3));
  return `${p > 0 ? '+' : ''}${p}%`;
}

function interval(ci: Interval, show: (x: number) => string): string {
  return ci ? `[${show(ci[0])}, ${show(ci[1])}]` : '-';
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function share(w: number | null | undefined): string {
  return w === null || w === undefined ? '-' : `${Number((w * 100).toPrecision(4))}%`;
}

/** 3725 -> "1h 2m 5s". */
export function duration(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [d ? `${d}d` : '', d || h ? `${h}h` : '', d || h || m ? `${m}m` : '', `${s % 60}s`].filter(Boolean);
  return parts.join(' ');
}

/** "winner treatment: <reason>" or "continue: <reason>". */
export function describeDecision(d: DecisionJson | null | undefined): string {
  if (!d) return '-';
  return `${d.action}${d.variant !== undefined ? ` ${d.variant}` : ''}: ${d.reason}`;
}

/** `sluice experiments list`: one row per experiment. */
export function listLines(list: ExperimentListJson[]): string[] {
  if (list.length === 0) return ['no experiments'];
  const rows = list.map((e) => {
    const last = e.status === 'stopped' ? e.outcome : e.decision;
    const action = last ? `${last.action}${last.variant !== undefined ? ` ${last.variant}` : ''}` : '-';
    return [e.name, e.model, e.status, e.variants.map((v) => `${v.name}=${v.version}`).join(', '), e.started_at,
      action + (e.promoted_version !== null ? ` (promoted ${e.promoted_version})` : '')];
  });
  return alignedLines([['name', 'model', 'status', 'variants', 'started', 'decision'], ...rows], 6);
}

function metricSpec(m: MetricSpecJson): string {
  return `${m.name} (${m.kind}, ${m.direction})`;
}

/** `sluice experiments show`: the definition and the state, a line each. */
export function experimentLines(e: ExperimentJson): string[] {
  const s = e.spec;
  const lines = [
    `${e.name} on ${e.model}: ${e.status}, started ${e.started_at} by ${e.created_by}${e.stopped_at ? `, stopped ${e.stopped_at}` : ''}`,
    `variants: ${s.variants.map((v) => `${v.name}=${v.version} ${share(v.weight)}${v.name === s.control ? ' (control)' : ''}`).join(', ')}; ${s.assignment} assignment`,
    `primary: ${metricSpec(s.primary)}`,
  ];
  if (s.secondary.length) lines.push(`secondary: ${s.secondary.map(metricSpec).join(', ')}`);
  if (s.guardrails.length) lines.push(`guardrails: ${s.guardrails.map(metricSpec).join(', ')}`);
  lines.push(`alpha ${s.alpha}; at least ${count(s.min_units)} units per variant and ${duration(s.min_runtime_s)} before any stop`
    + `${s.max_units !== null ? `; planned ${count(s.max_units)} units per variant` : ''}`
    + `${s.mde ? `; minimum effect ${s.mde.kind === 'relative' ? percent(s.mde.value) : s.mde.value}` : ''}`
    + `; ${s.auto_promote ? 'promotes a winner by itself' : 'waits for promote'}`);
  if (e.outcome) lines.push(`outcome: ${describeDecision(e.outcome)}${e.promoted_version !== null ? `; promoted version ${e.promoted_version}` : ''}`);
  else if (e.last_results?.decision) lines.push(`last analysis (${e.analyzed_at ?? '-'}): ${describeDecision(e.last_results.decision)}`);
  return lines;
}

const ROLE_ORDER: Record<string, number> = { primary: 0, secondary: 1, guardrail: 2 };

/** One metric: a heading, then a row per variant (the control's comparison cells are "-"). */
function metricBlock(m: MetricResultsJson, alpha: number): string[] {
  const level = `${Number(((1 - alpha) * 100).toPrecision(6))}%`;
  // Serving guardrails count requests; a mean of rewards counts the units that gave feedback.
  const n = m.kind === 'error_rate' || m.kind === 'latency' ? 'requests' : 'units';
  const over = m.kind === 'mean' ? ' over units with feedback' : '';
  const cuped = m.cuped_theta !== null ? `, CUPED theta ${figure(m.cuped_theta)}` : '';
  const head = ['variant', n, 'mean', 'diff', `${level} CI`, 'lift', 'lift CI', 'p fixed (Holm)', 'p seq (Holm)'];
  const rows = m.variants.map((v) => {
    const t = m.treatments.find((x) => x.variant === v.name);
    const cells = [v.name, count(v.n), figure(v.mean)];
    if (!t) return [...cells, '-', '-', '-', '-', '-', '-'];
    return [...cells, figure(t.diff), interval(t.ci, (x) => figure(x)), percent(t.lift), interval(t.lift_ci, percent), pValue(t.p_holm ?? t.p), pValue(t.seq_p_holm ?? t.seq_p)];
  });
  return [
    `${m.name}: ${m.role} metric, ${m.kind}${over}, ${m.direction} is better; ${m.test} test vs ${m.variants[0]?.name ?? 'control'}${cuped}`,
    ...alignedLines([head, ...rows]).map((l) => `  ${l}`),
  ];
}

/** `sluice experiments results`: a heading, a block per metric, the SRM check and the decision. */
export function resultsLines(r: ResultsJson): string[] {
  const variants = r.variants.map((v) => `${v.name}=${v.version} ${share(v.weight)} ${count(v.units)} units${v.control ? ' (control)' : ''}`).join(', ');
  const lines = [
    `${r.experiment} on ${r.model}: ${r.status} after ${duration(r.elapsed_s)}; ${r.assignment} assignment; alpha ${r.alpha}`,
    `variants: ${variants}`,
  ];
  const metrics = [...r.metrics].sort((a, b) => (ROLE_ORDER[a.role] ?? 3) - (ROLE_ORDER[b.role] ?? 3));
  for (const m of metrics) lines.push('', ...metricBlock(m, r.alpha));
  lines.push('');
  lines.push(r.srm
    ? `SRM: chi2 ${figure(r.srm.chi2)} (df ${r.srm.df}), p ${pValue(r.srm.p)}: ${r.srm.mismatch ? 'MISMATCH (no stop while it stands)' : 'no mismatch'}`
    : `SRM: - (${r.assignment === 'bandit' ? 'a bandit moves its allocation by design' : 'no units yet'})`);
  lines.push(`decision: ${describeDecision(r.decision)}`);
  if (r.outcome) lines.push(`outcome: ${describeDecision(r.outcome)}${r.promoted_version !== null ? `; promoted version ${r.promoted_version}` : ''}`);
  return lines;
}
