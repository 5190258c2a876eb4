/**
 * Prometheus text lines for counters and gauges kept outside the per-version metrics (the decision
 * log, feedback intake, learners, the embedded database), merged into /metrics by their caller.
 */

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function labelled(pairs: Record<string, string>): string {
  const keys = Object.keys(pairs);
  return keys.length === 0 ? '' : '{' + keys.map((k) => `${k}="${esc(pairs[k]!)}"`).join(',') + '}';
}

export function family(out: string[], name: string, type: 'counter' | 'gauge', help: string, rows: Array<[Record<string, string>, number]>): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, v] of rows) out.push(`${name}${labelled(labels)} ${v}`);
}
