/**
 * The text the `sluice deploy` commands print: the list of deployments, one deployment (its
 * settings, outcome, last verdict with its checks, and its events), and the one-line answers of
 * create and the operator's actions. The shapes are the admin API's JSON
 * (src/service/deployments.ts deploymentRecordJson, src/control/deployments/spec.ts
 * deploymentJson, the verdicts of src/control/deployments/controller.ts), as far as the text
 * reads them; a figure the JSON leaves null prints as "-".
 */
import { duration, figure } from './experiment-tables.js';
import { alignedLines } from './table.js';

export interface DeploymentSpecJson {
  model: string;
  kind: string;
  candidate: string;
  stable?: string;
  window_s: number;
  checks: { max_error_increase: number; max_p99_ratio: number; alpha: number; min_requests: number; confirm_s?: number };
  auto_promote: boolean;
  steps?: number[];
  step_min_s?: number;
  step_min_requests?: number;
  bake_s?: number;
  fraction?: number;
  duration_s?: number;
  rule?: { min_agreement: number; max_p99_ratio: number; max_error_rate: number; min_compared: number };
}

export interface CheckJson {
  name: string;
  state: string;
  detail: string;
}

/**
 * A look's verdict as the controller keeps it: canary and blue-green {verdict, reason, checks};
 * shadow {compared, agreement, error_rate, p99_ratio} (or {verdict, reason} before figures);
 * `waiting` when it is healthy but holds (step age, requests, a promotion by hand).
 */
export interface VerdictJson {
  verdict?: string;
  reason?: string;
  checks?: CheckJson[];
  waiting?: string;
  compared?: number;
  agreement?: number | null;
  error_rate?: number | null;
  p99_ratio?: number | null;
}

export interface DeploymentJson {
  id: number;
  model: string;
  kind: string;
  stable: string;
  candidate: string;
  status: string;
  step: number;
  share: number;
  step_started_at: string;
  spec: DeploymentSpecJson;
  last_verdict: VerdictJson | null;
  outcome: { action: string; reason: string; at: string } | null;
  created_by: string;
  created_at: string;
  finished_at: string | null;
}

export interface DeploymentEventJson {
  id: number;
  at: string;
  action: string;
  fromStatus: string;
  toStatus: string;
  step: number;
  share: number;
  actor: string;
  reason: string;
}

const FINISHED = ['promoted', 'rolled_back', 'aborted'];

/** 0.1 -> "10%", 0.005 -> "0.5%". */
export function percent(share: number): string {
  return `${Number((share * 100).toPrecision(4))}%`;
}

/** Whole seconds from an ISO time to `now` as "1h 2m 5s" (never negative: clocks differ). */
function age(since: string, now: number): string {
  return duration(Math.max(0, Math.floor((now - Date.parse(since)) / 1000)));
}

/** Where a deployment stands: canary "2/3 50%", blue-green "100%", shadow "mirror 10%". */
function position(d: DeploymentJson): string {
  if (d.kind === 'shadow') return `mirror ${percent(d.spec.fraction ?? 0)}`;
  if (d.kind === 'canary') return `${d.step + 1}/${d.spec.steps?.length ?? '-'} ${percent(d.share)}`;
  return percent(d.share);
}

/** A verdict as one line: "healthy: every check passed (waiting: ...)" or a shadow's figures. */
export function verdictLine(v: VerdictJson | null | undefined): string {
  if (!v) return '-';
  const waiting = v.waiting !== undefined ? ` (waiting: ${v.waiting})` : '';
  if (v.verdict !== undefined) return `${v.verdict}: ${v.reason ?? '-'}${waiting}`;
  return `compared ${v.compared ?? '-'}, agreement ${figure(v.agreement)}, error rate ${figure(v.error_rate)}, p99 ratio ${figure(v.p99_ratio)}${waiting}`;
}

/**
 * The list's last column: the last verdict while it runs, the outcome once it is over (the
 * verdict of a finished deployment says less than why it finished).
 */
function lastLine(d: DeploymentJson): string {
  if (FINISHED.includes(d.status) && d.outcome) return `${d.outcome.action}: ${d.outcome.reason}`;
  return verdictLine(d.last_verdict);
}

/** `sluice deploy status`: one row per deployment. */
export function deploymentListLines(list: DeploymentJson[], now = Date.now()): string[] {
  if (list.length === 0) return ['no deployments'];
  const rows = list.map((d) => [String(d.id), d.model, d.kind, `${d.candidate} over ${d.stable}`, d.status, position(d), age(d.created_at, now), lastLine(d)]);
  return alignedLines([['id', 'model', 'kind', 'candidate', 'status', 'step/share', 'age', 'last'], ...rows], 8); // text, and short figures read fine left-aligned
}

/** The settings of a deployment's kind, one line. */
function settingsLine(s: DeploymentSpecJson): string {
  const c = s.checks;
  const checks = `checks: error rate increase <= ${c.max_error_increase}, p99 ratio <= ${c.max_p99_ratio}, alpha ${c.alpha}, at least ${c.min_requests} requests each${c.confirm_s !== undefined ? `, latency and drift failures held ${c.confirm_s} s` : ''}`;
  const promote = s.auto_promote ? 'promotes by itself' : 'waits for promote';
  switch (s.kind) {
    case 'canary':
      return `steps ${(s.steps ?? []).map((x) => `${x}%`).join(', ')}, each at least ${s.step_min_s} s and ${s.step_min_requests} candidate requests; window ${s.window_s} s; ${checks}; ${promote}`;
    case 'blue-green':
      return `bake ${s.bake_s} s against the stable version's figures from before the switch; window ${s.window_s} s; ${checks}; ${promote}`;
    default: {
      const r = s.rule;
      return `mirror ${percent(s.fraction ?? 0)} for ${s.duration_s} s; rule: agreement >= ${r?.min_agreement}, error rate <= ${r?.max_error_rate}, p99 ratio <= ${r?.max_p99_ratio}, at least ${r?.min_compared} compared; ${promote}`;
    }
  }
}

/** `sluice deploy status <id>`: the deployment, its last verdict's checks, its events. */
export function deploymentLines(d: DeploymentJson & { events?: DeploymentEventJson[] }, now = Date.now()): string[] {
  const where = d.kind === 'canary' ? `, step ${d.step + 1} of ${d.spec.steps?.length ?? '-'} (${percent(d.share)} to the candidate)` : d.kind === 'blue-green' ? ` (${percent(d.share)} to the candidate)` : '';
  const lines = [
    `deployment ${d.id}: ${d.kind} of ${d.model} ${d.candidate} over ${d.stable}: ${d.status}${where}`,
    `started ${d.created_at} by ${d.created_by} (${age(d.created_at, now)} ago)${d.finished_at ? `, finished ${d.finished_at}` : ''}`,
    `settings: ${settingsLine(d.spec)}`,
  ];
  if (d.outcome) lines.push(`outcome: ${d.outcome.action}: ${d.outcome.reason}`);
  lines.push(`last verdict: ${verdictLine(d.last_verdict)}`);
  const checks = d.last_verdict?.checks ?? [];
  if (checks.length) lines.push(...alignedLines([['check', 'state', 'detail'], ...checks.map((c) => [c.name, c.state, c.detail])], 3).map((l) => `  ${l}`));
  const events = d.events ?? [];
  lines.push('', events.length ? 'events:' : 'events: none');
  if (events.length) {
    const rows = events.map((e) => [e.at, e.action, `${e.fromStatus} -> ${e.toStatus}`, percent(e.share), e.actor, e.reason]);
    lines.push(...alignedLines([['time', 'action', 'from -> to', 'share', 'actor', 'reason'], ...rows], 6).map((l) => `  ${l}`));
  }
  return lines;
}

/** The line `sluice deploy canary|blue-green|shadow` prints for the deployment it started. */
export function createdLine(d: DeploymentJson & { route_generation: number }): string {
  const traffic = d.kind === 'shadow'
    ? `mirroring ${percent(d.spec.fraction ?? 0)} of ${d.stable}'s traffic for ${d.spec.duration_s} s`
    : d.kind === 'blue-green'
      ? `all traffic switched, ${d.stable} kept loaded for ${d.spec.bake_s} s`
      : `${percent(d.share)} of traffic to the candidate (steps ${(d.spec.steps ?? []).map((x) => `${x}%`).join(', ')})`;
  return `deployment ${d.id}: ${d.kind} of ${d.model} ${d.candidate} over ${d.stable} ${d.status}, ${traffic} (route generation ${d.route_generation})`;
}

/** The line `sluice deploy pause|resume|abort|promote` prints. */
export function actedLine(d: DeploymentJson & { promoted?: { version: string; replaced_production: string | null } }): string {
  const head = `deployment ${d.id}: ${d.status.replace('_', ' ')}`;
  if (d.promoted) {
    const was = d.promoted.replaced_production !== null ? ` (was ${d.promoted.replaced_production})` : '';
    return `${head}; ${d.model} version ${d.promoted.version} is production now${was}`;
  }
  if (FINISHED.includes(d.status)) return `${head}; ${d.model} traffic is back on ${d.stable}`;
  return `${head} at ${position(d)}${d.kind === 'shadow' ? '' : ' to the candidate'}`;
}
