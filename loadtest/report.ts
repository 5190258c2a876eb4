/** Summaries, the JSON report and the SVG latency-by-percentile plot of load-test runs. */
import * as hdr from 'hdr-histogram-js';
import { newHistogram, type RunResult } from './open-loop.js';

export interface Summary {
  offeredRate: number;
  achievedRate: number;
  sent: number;
  answered: number;
  errors: Record<string, number>;
  errorCount: number;
  /** Requests refused as OVERLOADED (load shed): not errors, not successes. */
  refused: number;
  /** Successful answers per second of the run. */
  goodput: number;
  /** Every answer's latency (successes, refusals and errors). */
  latencyMs: Percentiles;
  /** Successful answers only, and refusals only. */
  okLatencyMs: Percentiles;
  refusedLatencyMs: Percentiles;
  /** How late requests left versus their schedule, ms (the generator's own health). */
  sendLagMsP99: number;
  /** CPU of the busiest load-generator process, as a fraction of one core. */
  generatorCpu: number;
  saturated: boolean;
  /** Percentile curve for plotting: [percentile, ms]. */
  curve: Array<[number, number]>;
}

export interface Percentiles { p50: number; p90: number; p99: number; p999: number; max: number }

function percentiles(h: hdr.Histogram): Percentiles {
  const ms = (us: number) => us / 1000;
  return { p50: ms(h.getValueAtPercentile(50)), p90: ms(h.getValueAtPercentile(90)), p99: ms(h.getValueAtPercentile(99)), p999: ms(h.getValueAtPercentile(99.9)), max: ms(h.maxValue) };
}

const PLOT_PERCENTILES = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999];

/** Merges per-process results into one summary. */
export function summarise(results: RunResult[]): Summary {
  const lat = newHistogram();
  const ok = newHistogram();
  const refusedLat = newHistogram();
  let refused = 0;
  let okSeen = false;
  const lag = newHistogram();
  const errors: Record<string, number> = {};
  let sent = 0;
  let answered = 0;
  let wall = 0;
  let offered = 0;
  let cpu = 0;
  for (const r of results) {
    lat.add(hdr.decodeFromCompressedBase64(r.histogram));
    if (r.okHistogram) {
      okSeen = true;
      ok.add(hdr.decodeFromCompressedBase64(r.okHistogram));
    }
    if (r.refusedHistogram) refusedLat.add(hdr.decodeFromCompressedBase64(r.refusedHistogram));
    refused += r.refused ?? 0;
    lag.add(hdr.decodeFromCompressedBase64(r.lagHistogram));
    for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    sent += r.sent;
    answered += r.answered;
    wall = Math.max(wall, r.wallS);
    offered += r.offeredRate;
    cpu = Math.max(cpu, r.cpu);
  }
  const ms = (us: number) => us / 1000;
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  const sendLagMsP99 = ms(lag.getValueAtPercentile(99));
  return {
    offeredRate: offered,
    achievedRate: answered / wall,
    sent,
    answered,
    errors,
    errorCount,
    refused,
    goodput: (okSeen ? ok.totalCount : answered - errorCount - refused) / wall,
    latencyMs: percentiles(lat),
    // Older results (another process of an earlier version) carry no split: all of it then.
    okLatencyMs: percentiles(okSeen ? ok : lat),
    refusedLatencyMs: percentiles(refusedLat),
    sendLagMsP99,
    generatorCpu: cpu,
    // A generator near a full core, or sending well behind schedule, measures itself.
    saturated: cpu > 0.9 || sendLagMsP99 > 5,
    curve: PLOT_PERCENTILES.map((p) => [p, ms(lat.getValueAtPercentile(p))]),
  };
}

export function describe(s: Summary): string {
  const l = s.latencyMs;
  const f = (v: number) => (v < 1 ? v.toFixed(3) : v.toFixed(2));
  const lines = [
    `offered ${s.offeredRate.toFixed(0)} req/s, achieved ${s.achievedRate.toFixed(0)} req/s, ${s.answered} answered, ${s.errorCount} errors${s.errorCount ? ' ' + JSON.stringify(s.errors) : ''}${s.refused ? `, ${s.refused} refused as OVERLOADED` : ''}`,
    `latency ms: p50 ${f(l.p50)}  p90 ${f(l.p90)}  p99 ${f(l.p99)}  p99.9 ${f(l.p999)}  max ${f(l.max)}`,
    ...(s.refused ? [
      `  successful (goodput ${s.goodput.toFixed(0)}/s): p50 ${f(s.okLatencyMs.p50)}  p99 ${f(s.okLatencyMs.p99)}  max ${f(s.okLatencyMs.max)}`,
      `  refused: p50 ${f(s.refusedLatencyMs.p50)}  p99 ${f(s.refusedLatencyMs.p99)}  max ${f(s.refusedLatencyMs.max)}`,
    ] : []),
    `load generator: CPU ${(s.generatorCpu * 100).toFixed(0)}% of a core, send lag p99 ${f(s.sendLagMsP99)} ms${s.saturated ? '  -- SATURATED: these figures measure the load generator, not the server' : ''}`,
  ];
  return lines.join('\n');
}

/** An SVG plot of latency (ms, log scale) by percentile (log scale of 1/(1-p)). */
export function svgPlot(title: string, series: Array<{ label: string; curve: Array<[number, number]> }>): string {
  const W = 720;
  const H = 420;
  const L = 70;
  const R = 20;
  const T = 40;
  const B = 50;
  const xOf = (p: number) => L + (Math.log10(1 / (1 - Math.min(p, 99.999) / 100)) / 5) * (W - L - R);
  const all = series.flatMap((s) => s.curve.map(([, v]) => v)).filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...all, 1))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all, 1))));
  const yOf = (v: number) => T + (H - T - B) * (1 - (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)));
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${title.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`];
  for (const p of [0, 90, 99, 99.9, 99.99, 99.999]) {
    const x = xOf(p);
    out.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" stroke="#ddd"/>`, `<text x="${x}" y="${H - B + 16}" text-anchor="middle">${p}%</text>`);
  }
  for (let v = lo; v <= hi; v *= 10) {
    const y = yOf(v);
    out.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#ddd"/>`, `<text x="${L - 6}" y="${y + 4}" text-anchor="end">${v} ms</text>`);
  }
  out.push(`<text x="${W / 2}" y="${H - 12}" text-anchor="middle">percentile</text>`);
  series.forEach((s, i) => {
    const pts = s.curve.map(([p, v]) => `${xOf(p).toFixed(1)},${yOf(v).toFixed(1)}`).join(' ');
    const c = colors[i % colors.length];
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts}"/>`);
    out.push(`<text x="${L + 10}" y="${T + 16 + i * 16}" fill="${c}">${s.label.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
