/**
 * CUPED covariates for `sluice experiments covariates`: read from a file, checked whole before
 * anything is sent (a bad line names its number and nothing reaches the server), then cut into
 * request bodies the admin API accepts.
 *
 * The file is a JSON list of {"unit_id", "value"} (when its first non-blank character is `[`)
 * or CSV lines `unit_id,value`, with or without a header line. A unit id may itself hold commas
 * (the value, a number, never does: the line splits at its last comma) and may be quoted CSV-style
 * ("a ""b"", c").
 */
import { SluiceError } from '../errors.js';
import { isValidUnitId } from '../learn/event-id.js';
import { MAX_COVARIATES } from '../service/experiments.js';

export type Covariate = [unit: string, value: number];

/** Bytes per request body at most: under the endpoint's 16 MiB limit with room to spare. */
export const MAX_BODY_BYTES = 12 << 20;

function bad(message: string): SluiceError {
  return new SluiceError('INVALID_ARGUMENT', message);
}

/** A number cell; NaN for anything else (Number('') would be 0). */
function numberCell(s: string): number {
  const t = s.trim();
  return t === '' ? NaN : Number(t);
}

function unquote(s: string): string {
  const t = s.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).replaceAll('""', '"') : t;
}

function checked(unit: unknown, value: unknown, where: string): Covariate {
  if (!isValidUnitId(unit)) throw bad(`${where}: the unit id must be 1 to 128 characters without control characters`);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(`${where}: the value must be a finite number`);
  return [unit, value];
}

function fromCsv(text: string, source: string): Covariate[] {
  const out: Covariate[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    if (line.trim() === '') continue;
    const where = `${source} line ${i + 1}`;
    const comma = line.lastIndexOf(',');
    if (comma < 0) throw bad(`${where}: write unit_id,value`);
    const value = numberCell(line.slice(comma + 1));
    // A first line whose value is not a number is a header (unit_id,value or any names).
    if (Number.isNaN(value) && out.length === 0 && lines.slice(0, i).every((l) => l.trim() === '')) continue;
    out.push(checked(unquote(line.slice(0, comma)), value, where));
  }
  return out;
}

function fromJson(text: string, source: string): Covariate[] {
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch (e) {
    throw bad(`cannot read ${source} as JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(list)) throw bad(`${source}: a JSON file must be a list of {"unit_id", "value"}`);
  return list.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw bad(`${source} item ${i}: write {"unit_id": "...", "value": 1.5}`);
    const o = item as Record<string, unknown>;
    return checked(o.unit_id, o.value, `${source} item ${i}`);
  });
}

/** Every covariate in the file's text; INVALID_ARGUMENT naming the line (or item) otherwise. */
export function parseCovariates(text: string, source: string): Covariate[] {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const out = body.trimStart().startsWith('[') ? fromJson(body, source) : fromCsv(body, source);
  if (out.length === 0) throw bad(`${source} holds no covariates: write unit_id,value lines`);
  return out;
}

/**
 * Request bodies ({"covariates": [...]}) of at most `maxCount` covariates and about `maxBytes`
 * bytes each, in file order.
 */
export function covariateBodies(values: Covariate[], maxCount = MAX_COVARIATES, maxBytes = MAX_BODY_BYTES): Array<{ body: Buffer; count: number }> {
  const bodies: Array<{ body: Buffer; count: number }> = [];
  let items: string[] = [];
  let bytes = 0;
  const flush = () => {
    if (items.length === 0) return;
    bodies.push({ body: Buffer.from(`{"covariates":[${items.join(',')}]}`), count: items.length });
    items = [];
    bytes = 0;
  };
  for (const [unit_id, value] of values) {
    const item = JSON.stringify({ unit_id, value });
    const size = Buffer.byteLength(item) + 1;
    if (items.length >= maxCount || (items.length > 0 && bytes + size > maxBytes)) flush();
    items.push(item);
    bytes += size;
  }
  flush();
  return bodies;
}
