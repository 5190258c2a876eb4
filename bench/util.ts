/** Small benchmark toolkit: correctness checks, interleaved timing, aligned tables, and `--also` server settings. */

export function check(cond: boolean, what: string): void {
  if (!cond) {
    console.error(`CORRECTNESS CHECK FAILED: ${what}`);
    process.exit(1);
  }
}

/** Runs `fn` repeatedly for about `ms` and returns nanoseconds per call. */
export function timeNs(fn: () => void, ms = 200): number {
  // Calibrate a batch size that takes ~1 ms so timer overhead does not matter.
  let n = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    const dt = Number(process.hrtime.bigint() - t0);
    if (dt > 1e6) break;
    n *= 2;
  }
  let calls = 0;
  const t0 = process.hrtime.bigint();
  const until = t0 + BigInt(ms * 1e6);
  let now = t0;
  while (now < until) {
    for (let i = 0; i < n; i++) fn();
    calls += n;
    now = process.hrtime.bigint();
  }
  return Number(now - t0) / calls;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Times two alternatives side by side, interleaved over `rounds`, so machine noise hits both;
 * returns the median time of each and the median of the per-round ratios b/a.
 */
export function compare(a: () => void, b: () => void, rounds = 7, ms = 150): { a: number; b: number; ratio: number } {
  timeNs(a, 50);
  timeNs(b, 50);
  const as: number[] = [];
  const bs: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const ta = timeNs(a, ms);
    const tb = timeNs(b, ms);
    as.push(ta);
    bs.push(tb);
    ratios.push(tb / ta);
  }
  return { a: median(as), b: median(bs), ratio: median(ratios) };
}

export function table(title: string, head: string[], rows: Array<Array<string | number>>): void {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  console.log(`\n${title}`);
  for (const [k, r] of cells.entries()) {
    console.log('  ' + r.map((c, i) => String(c).padStart(widths[i]!)).join('  '));
    if (k === 0) console.log('  ' + widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** Environment overrides of `--also=ENV=V[,ENV=V]`, or undefined. */
export function alsoEnv(): Record<string, string> | undefined {
  const raw = process.argv.find((a) => a.startsWith('--also='))?.slice('--also='.length);
  if (!raw) return undefined;
  return envPairs(raw, '--also');
}

/** `ENV=VALUE` pairs separated by commas or spaces, as an environment (`what` names their source in errors). */
export function envPairs(raw: string, what: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of raw.split(/[ ,]/).filter((x) => x !== '')) {
    const i = kv.indexOf('=');
    check(i > 0, `${what}: expected ENV=VALUE, got "${kv}"`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/**
 * Refusals by admission signal (event_loop, turn_budget, in_flight) in a /metrics text, summed
 * over I/O threads: which control law turned requests away.
 */
export function refusalsByReason(metrics: string): Map<string, number> {
  const refused = new Map<string, number>();
  for (const m of metrics.matchAll(/^sluice_admission_requests_total\{([^}]*)\}\s+(\S+)/gm)) {
    const labels = m[1]!;
    if (!labels.includes('decision="refused"')) continue;
    const reason = /reason="([^"]*)"/.exec(labels)?.[1] ?? '';
    refused.set(reason, (refused.get(reason) ?? 0) + Number(m[2]));
  }
  return refused;
}
