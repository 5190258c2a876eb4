/**
 * Learned-state deltas exchanged between replicas through the database (the only channel).
 * Bandit sufficient statistics are additive, so a delta is a Float64Array of the state's length,
 * added elementwise; the order deltas are added in changes nothing but rounding.
 *
 * Protocol (each replica applies every event exactly once):
 *  1. A replica has a name, `replica`, unique among the processes running at once (a process
 *     restarted under the same name continues its sequence). Its deltas are numbered
 *     seq = 1, 2, 3, ... per (model, version, replica).
 *  2. It applies its own feedback to its state at once, folds the same changes into a pending
 *     delta, and publishes that delta now and then: one row, the next seq. If `publish` throws,
 *     it is called again with the same delta (the row may have been committed before the
 *     answer was lost: the retry finds it and does not insert it twice).
 *  3. It keeps watermarks {replica: highest seq its state includes}, its own entry included.
 *     `pull(watermarks)` returns every other replica's deltas above their watermark, in
 *     (replica, seq) order, and the watermarks to keep once they are added. Pulling with the
 *     same watermarks again returns the same deltas; with the new ones, nothing already given.
 *  4. A checkpoint records the state with its watermarks. It is taken right after a publish,
 *     when no own change is pending: then the state holds exactly the own deltas up to its own
 *     watermark, and every other replica's up to theirs.
 *  5. A replica starting (new, or restarted) restores the latest checkpoint, whoever wrote it,
 *     and pulls with its watermarks. The pull also returns this replica's own deltas above its
 *     watermark that an earlier process of the same name published (published before the
 *     crash, not in the checkpoint), once; deltas this process publishes are never returned
 *     to it, as it applied them already.
 *  6. Deltas every retained checkpoint includes are deleted once they are older than a grace
 *     period (pruneDeltas, after checkpoint pruning): running replicas pull every few seconds
 *     and need them meanwhile, even when a single checkpoint includes them. A replica so far
 *     behind that deltas it needs were deleted gets DELTAS_PRUNED from `pull` and restores the
 *     latest checkpoint again.
 * Payloads are the Float64Array's bytes in the platform's order (little-endian on every
 * platform Sluice builds for). Non-finite values are refused: one would poison every replica.
 * Replicas pull by polling (the interval is the caller's).
 */
import { SluiceError } from '../errors.js';
import type { Db, Queryable } from '../registry/db.js';
import { num } from '../registry/rows.js';
import { checkWatermarks, type Watermarks } from './watermarks.js';

export interface DeltaExchangeOptions {
  model: string;
  version: string;
  replica: string;
  /** Elements per delta, when known: other lengths are refused on publish and on pull. */
  length?: number;
  /** Most deltas one pull returns (`more` says when there are others). Default 64. */
  maxPerPull?: number;
}

export interface Delta {
  replica: string;
  seq: number;
  /** Feedback events folded into it. */
  events: number;
  values: Float64Array;
}

export interface PullResult {
  deltas: Delta[];
  /** The watermarks to keep once `deltas` are added to the state (own entry included). */
  watermarks: Watermarks;
  /** The pull stopped at maxPerPull: pull again with the new watermarks. */
  more: boolean;
}

const DEFAULT_MAX_PER_PULL = 64;

function bytesOf(values: Float64Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Copies a payload (a Buffer from `pg`, a Uint8Array from PGlite, any alignment) into a Float64Array. */
function valuesOf(payload: Uint8Array): Float64Array {
  const values = new Float64Array(payload.byteLength / 8);
  new Uint8Array(values.buffer).set(payload);
  return values;
}

export class DeltaExchange {
  readonly model: string;
  readonly version: string;
  readonly replica: string;
  private readonly length: number | undefined;
  private readonly maxPerPull: number;
  /** This name's highest seq when this process began: deltas up to it came from an earlier process. */
  private inherited: number | undefined;
  /** The seq the next publish uses (kept after a failed publish, which is retried with it). */
  private nextSeq = 0;
  private lastPublished = 0;
  /** Publishes run one at a time, so seqs commit in order. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly db: Db, opts: DeltaExchangeOptions) {
    for (const k of ['model', 'version', 'replica'] as const) {
      const v = opts?.[k];
      if (typeof v !== 'string' || v.length === 0 || v.length > 256) throw new SluiceError('INVALID_ARGUMENT', `delta exchange: ${k} must be a string of 1-256 characters`);
    }
    if (opts.length !== undefined && (!Number.isSafeInteger(opts.length) || opts.length < 1)) throw new SluiceError('INVALID_ARGUMENT', 'delta exchange: length must be a whole number >= 1');
    this.model = opts.model;
    this.version = opts.version;
    this.replica = opts.replica;
    this.length = opts.length;
    this.maxPerPull = opts.maxPerPull ?? DEFAULT_MAX_PER_PULL;
    if (!Number.isSafeInteger(this.maxPerPull) || this.maxPerPull < 1) throw new SluiceError('INVALID_ARGUMENT', 'delta exchange: maxPerPull must be a whole number >= 1');
  }

  /** Reads, once, where this replica name's sequence stands. */
  private async start(): Promise<number> {
    if (this.inherited === undefined) {
      // Pruning deletes deltas that checkpoints include, so a checkpoint may be all that still
      // shows how far the sequence went: reusing a pruned seq would hide a delta from everyone.
      const rows = await this.db.query(
        `SELECT GREATEST(
           (SELECT max(seq) FROM learner_deltas WHERE model = $1 AND version = $2 AND replica = $3),
           (SELECT max((watermarks ->> $3::text)::bigint) FROM checkpoints WHERE model = $1 AND version = $2)) AS seq`,
        [this.model, this.version, this.replica],
      );
      const seq = rows[0]?.seq;
      this.inherited = seq === null || seq === undefined ? 0 : num(seq);
      this.nextSeq = this.inherited + 1;
    }
    return this.inherited;
  }

  /**
   * Publishes this replica's next delta (already applied to its own state) holding `events`
   * feedback events. Resolves to its seq once committed. See the protocol for a failed publish.
   */
  publish(delta: Float64Array, events: number): Promise<number> {
    if (!(delta instanceof Float64Array) || delta.length === 0) throw new SluiceError('INVALID_ARGUMENT', 'delta exchange: a delta is a non-empty Float64Array');
    if (this.length !== undefined && delta.length !== this.length) throw new SluiceError('INVALID_ARGUMENT', `delta exchange: a delta has ${this.length} values, not ${delta.length}`);
    if (!Number.isSafeInteger(events) || events < 0) throw new SluiceError('INVALID_ARGUMENT', 'delta exchange: events must be a whole number >= 0');
    for (let i = 0; i < delta.length; i++) {
      if (!Number.isFinite(delta[i])) throw new SluiceError('INVALID_ARGUMENT', `delta exchange: value ${i} of the delta is not finite`);
    }
    const payload = bytesOf(delta);
    const run = this.queue.then(() => this.insert(payload, events));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async insert(payload: Buffer, events: number): Promise<number> {
    await this.start();
    const seq = this.nextSeq;
    const inserted = await this.db.query(
      `INSERT INTO learner_deltas (model, version, replica, seq, events, payload) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (model, version, replica, seq) DO NOTHING RETURNING seq`,
      [this.model, this.version, this.replica, seq, events, payload],
    );
    if (inserted.length === 0) {
      // The seq is taken: by this very delta on an attempt whose answer was lost, or by another
      // process publishing under the same name, which would break exactly-once for everyone.
      const [row] = await this.db.query<{ payload: Uint8Array }>('SELECT payload FROM learner_deltas WHERE model = $1 AND version = $2 AND replica = $3 AND seq = $4', [this.model, this.version, this.replica, seq]);
      if (!row || !sameBytes(row.payload, payload)) {
        throw new SluiceError('INTERNAL', `delta exchange: seq ${seq} of replica ${this.replica} holds another delta: two processes publish under one replica name`);
      }
    }
    this.nextSeq = seq + 1;
    this.lastPublished = seq;
    return seq;
  }

  /** Deltas above `watermarks` to add to the state (see the protocol). */
  async pull(watermarks: Watermarks): Promise<PullResult> {
    checkWatermarks(watermarks, 'delta exchange: watermarks');
    const inherited = await this.start();
    const own = watermarks[this.replica] ?? 0;
    const rows = await this.db.query(
      `SELECT replica, seq, events, payload FROM learner_deltas
       WHERE model = $1 AND version = $2
         AND ((replica <> $3 AND seq > COALESCE(($4::jsonb ->> replica)::bigint, 0))
           OR (replica = $3 AND seq > $5 AND seq <= $6))
       ORDER BY replica, seq LIMIT $7`,
      [this.model, this.version, this.replica, JSON.stringify(watermarks), own, inherited, this.maxPerPull],
    );
    const next: Watermarks = { ...watermarks };
    const deltas: Delta[] = [];
    for (const r of rows) {
      const replica = r.replica as string;
      const seq = num(r.seq);
      const expected = (next[replica] ?? 0) + 1;
      if (seq !== expected) {
        throw new SluiceError('DELTAS_PRUNED', `delta exchange: replica ${replica}'s deltas from seq ${expected} were pruned; restore the latest checkpoint`);
      }
      const payload = r.payload as Uint8Array;
      if (payload.byteLength % 8 !== 0 || payload.byteLength === 0 || (this.length !== undefined && payload.byteLength !== this.length * 8)) {
        throw new SluiceError('INTERNAL', `delta exchange: delta ${seq} of replica ${replica} has ${payload.byteLength} bytes, not a delta of this state`);
      }
      deltas.push({ replica, seq, events: num(r.events), values: valuesOf(payload) });
      next[replica] = seq;
    }
    // What this process published is in its state already; once the inherited deltas are all
    // pulled (a pull cut at maxPerPull may not have reached them yet), the watermark moves on.
    const ownNow = next[this.replica] ?? 0;
    if (ownNow >= inherited && this.lastPublished > ownNow) next[this.replica] = this.lastPublished;
    return { deltas, watermarks: next, more: rows.length === this.maxPerPull };
  }

  /** Deletes the deltas that every retained checkpoint includes (pruneDeltas). */
  prune(graceMs = DEFAULT_DELTA_GRACE_MS): Promise<number> {
    return pruneDeltas(this.db, this.model, this.version, graceMs);
  }
}

/** How long a delta is kept after checkpoints include it: far longer than replicas pull apart. */
export const DEFAULT_DELTA_GRACE_MS = 15 * 60_000;

/**
 * Deletes a model version's deltas older than `graceMs` that every one of its checkpoints
 * includes (a checkpoint without an entry for a replica includes none of its deltas). Nothing
 * while it has no checkpoint. Returns how many were deleted.
 */
export async function pruneDeltas(q: Queryable, model: string, version: string, graceMs = DEFAULT_DELTA_GRACE_MS): Promise<number> {
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new SluiceError('INVALID_ARGUMENT', 'delta pruning: the grace period must be a number of milliseconds >= 0');
  const rows = await q.query(
    `DELETE FROM learner_deltas d
     WHERE d.model = $1 AND d.version = $2
       AND d.created_at <= now() - $3::double precision * interval '1 millisecond'
       AND d.seq <= (SELECT min(COALESCE((c.watermarks ->> d.replica)::bigint, 0)) FROM checkpoints c WHERE c.model = $1 AND c.version = $2)
     RETURNING 1`,
    [model, version, graceMs],
  );
  return rows.length;
}
