/**
 * The feedback log on local disk, for while the database is unreachable: append-only segment
 * files `<dir>/log.<seq>` of JSON lines, each group of records written with one write and made
 * durable with one fdatasync before anything in it is acknowledged.
 *
 * A segment is only ever appended to by the process that created it, and is closed ("sealed")
 * before it is replayed; a crash can therefore leave at most a torn last line, which was never
 * acknowledged (its fsync had not returned) and is skipped on reading. A failed write (ENOSPC)
 * is cut back to the last whole record, so nothing after it is glued to a partial line. A
 * segment is deleted only after every record in it is committed to the database; a crash
 * before that replays it again, which the unique event id makes harmless.
 */
import { mkdir, open, readdir, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { isValidEventId, isValidUnitId } from './event-id.js';

/** One acknowledged feedback event, as logged. Short keys: the log is written during outages, under load. */
export interface LogRecord {
  /** event id */
  e: string;
  /** reward */
  r: number;
  /** unit id */
  u?: string;
  /** when the outcome happened (ms) */
  a: number;
  /** when it was received (ms) */
  t: number;
  /** the decision, when this process still held it (DecisionLog.pending) at acceptance */
  d?: { at: number; model: string; variant: string; version: string; propensity: number; routeGen: number; unitId?: string; action?: number };
}

const NAME = /^log\.(\d{12})$/;

export interface Segment {
  path: string;
  bytes: number;
}

export class LocalLog {
  private current: { fh: FileHandle; path: string; bytes: number } | undefined;
  private readonly sealedList: Segment[] = [];
  private nextSeq = 1;
  /** Appends and seals run one after another. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly dir: string, private readonly maxSegmentBytes = 64 * 1024 * 1024) {}

  /** Creates the directory if needed; segments left by an earlier run are sealed (to be replayed). */
  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const names = (await readdir(this.dir)).filter((n) => NAME.test(n)).sort();
    for (const n of names) {
      const p = path.join(this.dir, n);
      this.sealedList.push({ path: p, bytes: (await stat(p)).size });
      this.nextSeq = Math.max(this.nextSeq, Number(NAME.exec(n)![1]) + 1);
    }
  }

  /** Bytes in segments not yet replayed and deleted. */
  get bytes(): number {
    let n = this.current?.bytes ?? 0;
    for (const s of this.sealedList) n += s.bytes;
    return n;
  }

  get hasSegments(): boolean {
    return this.current !== undefined || this.sealedList.length > 0;
  }

  /** Sealed segments, oldest first (a copy). */
  sealed(): Segment[] {
    return [...this.sealedList];
  }

  /** Appends the records durably (written and fdatasync'd); rejects with the file system's error (ENOSPC...), leaving no partial record. */
  append(records: LogRecord[]): Promise<void> {
    const buf = Buffer.from(records.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8');
    return this.serial(() => this.write(buf));
  }

  /** Closes the segment being appended to (after the append in progress); the next append starts a new one. */
  seal(): Promise<void> {
    return this.serial(() => this.sealCurrent());
  }

  /** Deletes a replayed segment. */
  async remove(seg: Segment): Promise<void> {
    await unlink(seg.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    const i = this.sealedList.findIndex((s) => s.path === seg.path);
    if (i >= 0) this.sealedList.splice(i, 1);
  }

  async close(): Promise<void> {
    await this.seal();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async sealCurrent(): Promise<void> {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    await c.fh.close().catch(() => undefined);
    this.sealedList.push({ path: c.path, bytes: c.bytes });
  }

  private async write(buf: Buffer): Promise<void> {
    if (!this.current) {
      const p = path.join(this.dir, `log.${String(this.nextSeq++).padStart(12, '0')}`);
      const fh = await open(p, 'wx'); // created here, never reused: positioned writes
      try {
        await syncDir(this.dir); // the new file's name must survive a crash too
      } catch (e) {
        await fh.close().catch(() => undefined);
        await unlink(p).catch(() => undefined);
        throw e;
      }
      this.current = { fh, path: p, bytes: 0 };
    }
    const c = this.current;
    try {
      let off = 0;
      while (off < buf.byteLength) {
        const { bytesWritten } = await c.fh.write(buf, off, buf.byteLength - off, c.bytes + off);
        off += bytesWritten;
      }
      await c.fh.datasync();
      c.bytes += buf.byteLength;
    } catch (e) {
      // Cut back to the last whole record; if even that fails, close the segment so that a
      // torn record can only ever be its last line.
      try {
        await c.fh.truncate(c.bytes);
      } catch {
        await this.sealCurrent();
      }
      throw e;
    }
    if (c.bytes >= this.maxSegmentBytes) await this.sealCurrent();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A segment's records; a line that does not parse as a whole record (a torn write) is counted and skipped. */
export async function readSegment(seg: Segment): Promise<{ records: LogRecord[]; corrupt: number }> {
  const text = await readFile(seg.path, 'utf8');
  const records: LogRecord[] = [];
  let corrupt = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      corrupt++;
      continue;
    }
    if (isRecord(r)) records.push(r);
    else corrupt++;
  }
  return { records, corrupt };
}

function isRecord(r: unknown): r is LogRecord {
  if (typeof r !== 'object' || r === null) return false;
  const o = r as Record<string, unknown>;
  return isValidEventId(o.e) && typeof o.r === 'number' && Number.isFinite(o.r) && Number.isFinite(o.a) && Number.isFinite(o.t)
    && (o.u === undefined || isValidUnitId(o.u)) && (o.d === undefined || (typeof o.d === 'object' && o.d !== null));
}
