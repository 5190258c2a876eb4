/**
 * Reading rows from a file of any size with constant memory: JSON Lines (each line an array,
 * or an object keyed by input name) or CSV (numbers; a first line that is not numbers is a
 * header). Rows come out in batches.
 */
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { SluiceError } from '../errors.js';

export type Row = unknown[] | Record<string, unknown>;

const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * Parses one CSV cell of the form [-+]digits[.digits] quickly and exactly (the digits as an
 * integer below 2^53, then one division by a power of ten, which rounds correctly); anything
 * else (exponents, long mantissas, spaces) goes to Number(). NaN for a non-number.
 */
export function parseCell(line: string, from: number, to: number): number {
  let i = from;
  let neg = false;
  const c0 = line.charCodeAt(i);
  if (c0 === 45 || c0 === 43) {
    neg = c0 === 45;
    i++;
  }
  let mant = 0;
  let digits = 0;
  let scale = -1;
  for (; i < to; i++) {
    const c = line.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      mant = mant * 10 + (c - 48);
      digits++;
      if (scale >= 0) scale++;
    } else if (c === 46 && scale < 0) {
      scale = 0;
    } else {
      return to > from ? Number(line.slice(from, to)) : NaN;
    }
  }
  if (digits === 0 || digits > 15) return digits === 0 ? NaN : Number(line.slice(from, to));
  const v = scale > 0 ? mant / POW10[scale]! : mant;
  return neg ? -v : v;
}

export interface RowBatch {
  /** Line number (1-based) of the first row. */
  firstLine: number;
  /** Line number of each row, for error messages. */
  lines: number[];
  rows: Row[];
}

export interface RowSource {
  batches: AsyncGenerator<RowBatch>;
  /** Fraction of the file read so far (0..1). */
  fraction(): number;
}

export function readRows(file: string, batchSize: number): RowSource {
  const size = statSync(file).size;
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  const csv = /\.csv$/i.test(file);
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  async function* batches(): AsyncGenerator<RowBatch> {
    let n = 0;
    let batch: RowBatch = { firstLine: 1, lines: [], rows: [] };
    for await (const line of lines) {
      n++;
      const text = line.trim();
      if (text === '') continue;
      let row: Row;
      if (csv) {
        const values: number[] = [];
        let numeric = true;
        for (let start = 0; start <= text.length;) {
          let end = text.indexOf(',', start);
          if (end < 0) end = text.length;
          const v = parseCell(text, start, end);
          if (Number.isNaN(v) && text.slice(start, end).trim() !== 'NaN') numeric = false;
          values.push(v);
          start = end + 1;
        }
        if (!numeric) {
          if (n === 1) continue; // a header line
          throw new SluiceError('INVALID_ARGUMENT', `line ${n}: not a row of numbers`);
        }
        row = values;
      } else {
        try {
          row = JSON.parse(text) as Row;
        } catch {
          throw new SluiceError('MALFORMED_REQUEST', `line ${n}: not valid JSON`);
        }
        if (typeof row !== 'object' || row === null) throw new SluiceError('INVALID_ARGUMENT', `line ${n}: a row must be an array or an object`);
      }
      if (batch.rows.length === 0) batch.firstLine = n;
      batch.rows.push(row);
      batch.lines.push(n);
      if (batch.rows.length >= batchSize) {
        yield batch;
        batch = { firstLine: n + 1, lines: [], rows: [] };
      }
    }
    if (batch.rows.length > 0) yield batch;
  }
  return { batches: batches(), fraction: () => (size === 0 ? 1 : stream.bytesRead / size) };
}
