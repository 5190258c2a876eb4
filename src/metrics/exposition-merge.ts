/**
 * Merges Prometheus text exposition lines written by several I/O threads (each front end counts
 * its own HTTP requests, admission decisions and so on) into one exposition for `/metrics`.
 *
 * - A series is a metric name plus its label set (labels compared as a set: the order they are
 *   written in does not matter). The values of identical series are summed; the first text seen
 *   for the series is kept.
 * - Each metric keeps one `# HELP` and one `# TYPE` line (the first seen). Families appear in
 *   the order first seen, going through the threads in the order given, and so do series within
 *   a family; a family's `_sum`, `_count`, `_bucket`, `_total` and `_created` samples stay in it.
 *
 * Summing is right for counters and for additive gauges (requests in flight, cache entries). A
 * gauge that is not additive (a limit, a ratio, a lag, a quantile of a summary) must carry a
 * `thread` label in each thread's lines: series with different labels are different series, so
 * they are kept apart automatically, and nothing is summed that should not be. This function
 * cannot tell an additive gauge from another: it sums every identical series.
 */
import { SluiceError } from '../errors.js';

interface Series {
  /** Name and labels as first written. */
  text: string;
  value: number;
  /** The latest explicit timestamp (ms), if any line carried one. */
  timestamp: number | undefined;
}

interface Family {
  help: string | undefined;
  type: string | undefined;
  /** Other comment lines, once each. */
  comments: string[];
  series: Map<string, Series>;
}

const FAMILY_SUFFIXES = ['_sum', '_count', '_bucket', '_total', '_created'];

function belongsTo(sample: string, family: string): boolean {
  return sample === family || FAMILY_SUFFIXES.some((s) => sample === family + s);
}

function parseValue(v: string, line: string): number {
  if (v === '+Inf' || v === 'Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  const n = Number(v);
  if (v === '' || Number.isNaN(n)) throw new SluiceError('INTERNAL', `metrics: bad sample value in exposition line: ${line}`);
  return n;
}

function formatValue(n: number): string {
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n); // NaN prints as NaN
}

const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;

/** `name{labels} value [timestamp]` -> its parts and a key that ignores the labels' order. */
function parseSample(line: string): { name: string; key: string; text: string; value: number; timestamp: number | undefined } {
  const nameEnd = line.search(/[{\s]/);
  if (nameEnd <= 0) throw new SluiceError('INTERNAL', `metrics: bad exposition line: ${line}`);
  const name = line.slice(0, nameEnd);
  let rest = nameEnd;
  const pairs: string[] = [];
  if (line[nameEnd] === '{') {
    const close = labelsEnd(line, nameEnd + 1);
    const body = line.slice(nameEnd + 1, close);
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < body.length) {
      const m = LABEL.exec(body);
      if (!m) throw new SluiceError('INTERNAL', `metrics: bad labels in exposition line: ${line}`);
      pairs.push(m[1] + '="' + m[2] + '"');
      if (m[3] === '') break;
    }
    rest = close + 1;
  }
  const fields = line.slice(rest).trim().split(/\s+/);
  if (fields.length < 1 || fields.length > 2) throw new SluiceError('INTERNAL', `metrics: bad exposition line: ${line}`);
  const value = parseValue(fields[0]!, line);
  const timestamp = fields[1] === undefined ? undefined : parseValue(fields[1], line);
  pairs.sort();
  return { name, key: name + '{' + pairs.join(',') + '}', text: line.slice(0, rest), value, timestamp };
}

/** Index of the `}` closing a label set that starts at `from` (quotes and escapes respected). */
function labelsEnd(line: string, from: number): number {
  let quoted = false;
  for (let i = from; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '}') return i;
  }
  throw new SluiceError('INTERNAL', `metrics: unclosed labels in exposition line: ${line}`);
}

export function mergeExpositionLines(lines: string[][]): string[] {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { help: undefined, type: undefined, comments: [], series: new Map() }));
    return f;
  };
  for (const thread of lines) {
    // The family named by the last HELP/TYPE line of this thread's lines.
    let current: { name: string; family: Family } | undefined;
    for (const line of thread) {
      if (line.trim() === '') continue;
      if (line.startsWith('#')) {
        const m = /^#\s*(HELP|TYPE)\s+(\S+)/.exec(line);
        if (m) {
          const name = m[2]!;
          current = { name, family: family(name) };
          if (m[1] === 'HELP') current.family.help ??= line;
          else current.family.type ??= line;
        } else {
          const f = current?.family ?? family('');
          if (!f.comments.includes(line)) f.comments.push(line);
        }
        continue;
      }
      const s = parseSample(line);
      const f = current && belongsTo(s.name, current.name) ? current.family : family(s.name);
      const had = f.series.get(s.key);
      if (!had) f.series.set(s.key, { text: s.text, value: s.value, timestamp: s.timestamp });
      else {
        had.value += s.value;
        if (s.timestamp !== undefined && (had.timestamp === undefined || s.timestamp > had.timestamp)) had.timestamp = s.timestamp;
      }
    }
  }
  const out: string[] = [];
  for (const f of families.values()) {
    if (f.help) out.push(f.help);
    if (f.type) out.push(f.type);
    out.push(...f.comments);
    for (const s of f.series.values()) {
      out.push(`${s.text} ${formatValue(s.value)}${s.timestamp === undefined ? '' : ' ' + formatValue(s.timestamp)}`);
    }
  }
  return out;
}
