/**
 * The open-loop load generator: requests leave on a fixed schedule whether or not earlier ones
 * have been answered (HTTP/1.1 pipelining over several keep-alive connections), so a slow
 * server cannot slow the offered load down. That is what makes the latencies free of
 * coordinated omission: each is timed from the moment its request was written.
 *
 * (autocannon's `overallRate` was measured here sending each connection's per-second quota in a
 * burst at the start of every second, up to 3x the nominal rate for a few hundred ms and then
 * nothing, so fixed-rate runs do not use it; see loadtest/README.md.)
 */
import net from 'node:net';
import * as hdr from 'hdr-histogram-js';
import type { Target } from './target.js';

export interface RunOptions {
  rate: number;
  durationS: number;
  connections: number;
  /**
   * Instead of one rate: phases run back to back on the same connections (e.g. overload, then
   * normal load, to time the recovery). `rate`/`durationS` are then only reported.
   */
  phases?: Array<{ rate: number; durationS: number }>;
  /** Also keep counts and latencies per window of this many ms (by send time), in `windows`. */
  windowMs?: number;
  /** Called about once a second with counts so far. */
  onProgress?: (p: Progress) => void;
  /**
   * Called once per request with its fate (the chaos harness classifies them by time and error
   * code). Unset, nothing per request is kept beyond the histograms.
   */
  onOutcome?: (o: Outcome) => void;
  /**
   * Reopen a connection that closed (on its next request) instead of losing its share of the
   * load for the rest of the run: a restarted server is found again on the same port.
   */
  reconnect?: boolean;
  /**
   * false: at most one request on the wire per connection, the next written when the answer
   * comes (still timed from its scheduled send, so queueing on the client counts against the
   * latency). For servers or paths that mishandle pipelined requests. Default true.
   */
  pipeline?: boolean;
}

/** One request's fate. */
export interface Outcome {
  /** Index in the schedule. */
  index: number;
  /** When it was due by the schedule (process.hrtime.bigint() in ms). */
  sentAtMs: number;
  /**
   * When it was written to the socket (same clock); later than sentAtMs when it waited on the
   * client behind an earlier request (no pipelining); absent if it never was.
   */
  writtenAtMs?: number;
  /** Answer time minus sentAtMs; for lost requests, when the loss was noticed. */
  latencyMs: number;
  /** HTTP status, or 0 when no answer came (connection refused, reset or closed). */
  status: number;
  /** Response head (status line and headers) and body; absent for lost requests. */
  head?: string;
  body?: Buffer;
}

export interface Progress {
  elapsedS: number;
  sent: number;
  answered: number;
  errors: number;
}

export interface RunResult {
  offeredRate: number;
  sent: number;
  answered: number;
  /** Answers that were neither 2xx nor an OVERLOADED refusal, by status; plus transport errors under "error". */
  errors: Record<string, number>;
  /** Answers refusing the request as OVERLOADED (HTTP 503, gRPC UNAVAILABLE with sluice-code OVERLOADED): load shed, not errors. */
  refused?: number;
  /** Encoded HDR histogram of latencies in microseconds (to merge across processes): every answer. */
  histogram: string;
  /** The same for successful (2xx / OK) answers only, and for refusals only. */
  okHistogram?: string;
  refusedHistogram?: string;
  /** With `windowMs`: per window of send time, counts and the successful answers' latency histogram. */
  windows?: RunWindow[];
  /** How late requests left compared with their schedule (generator health), microseconds. */
  lagHistogram: string;
  wallS: number;
  /** CPU used by this process over the run, as a fraction of one core. */
  cpu: number;
}

export interface RunWindow {
  startS: number;
  ok: number;
  refused: number;
  errors: number;
  /** Encoded HDR histogram (us) of the successful answers to requests sent in this window. */
  histogram: string;
  /** The same for the refusals (OVERLOADED) of this window's requests. */
  refusedHistogram: string;
}

/** How answers are classified: success, refusal under overload, or error. */
export type AnswerClass = 'ok' | 'refused' | 'error';

/** Collects every answer's latency and outcome, overall and (optionally) per window of send time. */
export class Recorder {
  readonly all = newHistogram();
  readonly ok = newHistogram();
  readonly refusedLatency = newHistogram();
  refused = 0;
  private readonly windows: Array<{ ok: number; refused: number; errors: number; h: hdr.Histogram; rh: hdr.Histogram }> = [];

  constructor(private readonly windowMs?: number) {}

  /** `sentAtS`: seconds from the start of the run; `us`: latency in microseconds. */
  record(outcome: AnswerClass, us: number, sentAtS: number): void {
    const v = Math.max(1, us);
    this.all.recordValue(v);
    if (outcome === 'ok') this.ok.recordValue(v);
    else if (outcome === 'refused') {
      this.refused++;
      this.refusedLatency.recordValue(v);
    }
    if (this.windowMs) {
      const i = Math.max(0, Math.floor((sentAtS * 1000) / this.windowMs));
      while (this.windows.length <= i) this.windows.push({ ok: 0, refused: 0, errors: 0, h: windowHistogram(), rh: windowHistogram() });
      const w = this.windows[i]!;
      if (outcome === 'ok') {
        w.ok++;
        w.h.recordValue(v);
      } else if (outcome === 'refused') {
        w.refused++;
        w.rh.recordValue(v);
      } else w.errors++;
    }
  }

  fields(): Pick<RunResult, 'histogram' | 'okHistogram' | 'refusedHistogram' | 'refused' | 'windows'> {
    return {
      histogram: hdr.encodeIntoCompressedBase64(this.all),
      okHistogram: hdr.encodeIntoCompressedBase64(this.ok),
      refusedHistogram: hdr.encodeIntoCompressedBase64(this.refusedLatency),
      refused: this.refused,
      ...(this.windowMs ? { windows: this.windows.map((w, i) => ({ startS: (i * this.windowMs!) / 1000, ok: w.ok, refused: w.refused, errors: w.errors, histogram: hdr.encodeIntoCompressedBase64(w.h), refusedHistogram: hdr.encodeIntoCompressedBase64(w.rh) })) } : {}),
    };
  }
}

/** A window's latency histogram (us, 2 digits: there are many windows), and any merge of windows'. */
export function windowHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 2 });
}

/** A latency histogram in microseconds (1 us to 120 s, 3 digits): every run's and every summary's. */
export function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
}

/**
 * The fixed schedule the HTTP and gRPC generators share: `send(i)` is called for request i at
 * start + i/rate (whatever is due, every 1 ms tick), `lag` records how late each one left,
 * `onProgress` hears about it once a second; then it waits (at most 10 s) until every request
 * sent has been answered or lost. Returns the wall time and this process's CPU over the run,
 * as a fraction of one core.
 */
export async function pace(o: RunOptions, lag: hdr.Histogram, send: (i: number) => void, counts: () => { answered: number; lost: number; errors: number }): Promise<{ sent: number; wallS: number; cpu: number }> {
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  // The schedule: phase k sends its requests at its own rate, from where the previous ended.
  const phases = (o.phases ?? [{ rate: o.rate, durationS: o.durationS }]).map((p) => ({ n: Math.round(p.rate * p.durationS), intervalNs: 1e9 / p.rate, durationNs: p.durationS * 1e9 }));
  const total = phases.reduce((a, p) => a + p.n, 0);
  let phase = 0;
  let phaseFirst = 0;
  let phaseStartNs = 0;
  const dueNs = (i: number) => {
    while (phase < phases.length - 1 && i >= phaseFirst + phases[phase]!.n) {
      phaseFirst += phases[phase]!.n;
      phaseStartNs += phases[phase]!.durationNs;
      phase++;
    }
    return phaseStartNs + (i - phaseFirst) * phases[phase]!.intervalNs;
  };
  let sent = 0;
  let lastProgress = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = Number(process.hrtime.bigint() - start);
      while (sent < total && dueNs(sent) <= now) {
        lag.recordValue(Math.max(1, (now - dueNs(sent)) / 1000));
        send(sent);
        sent++;
      }
      if (o.onProgress && now - lastProgress > 1e9) {
        lastProgress = now;
        const c = counts();
        o.onProgress({ elapsedS: now / 1e9, sent, answered: c.answered, errors: c.errors });
      }
      if (sent >= total) return resolve();
      setTimeout(tick, 1);
    };
    tick();
  });
  // Drain: wait for outstanding answers.
  const until = Date.now() + 10_000;
  const settled = () => {
    const c = counts();
    return c.answered + c.lost >= sent;
  };
  while (!settled() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { sent, wallS, cpu: (cpu.user + cpu.system) / 1e6 / wallS };
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const OVERLOADED = Buffer.from('"OVERLOADED"');

type AnswerHook = (status: number, sentAt: bigint, index: number, overloaded: boolean, head?: string, body?: Buffer, writtenAt?: bigint) => void;
type LossHook = (lost: Array<{ at: bigint; index: number; writtenAt?: bigint }>) => void;

/** One keep-alive connection with pipelined requests and a minimal response parser. */
class Connection {
  private socket!: net.Socket;
  private sentAt: bigint[] = [];
  private indexes: number[] = [];
  private head = 0;
  private buf: Buffer = Buffer.alloc(0);
  /** Without pipelining: requests scheduled but not yet written (the tail of sentAt). */
  private unsent: Buffer[] = [];
  /** When each request (by index) was written, while it is unanswered (only kept with `withBodies`, the per-request mode). */
  private readonly writtenAt = new Map<number, bigint>();
  open = false;

  /** `withBodies`: hand each answer's head and body to `onAnswer` (they are not kept otherwise). */
  constructor(private readonly t: Target, private readonly onAnswer: AnswerHook, private readonly onLoss: LossHook, private readonly withBodies: boolean, private readonly pipeline = true) {
    this.connect();
  }

  private connect(): void {
    const socket = net.connect(this.t.port, this.t.host);
    this.socket = socket;
    this.open = true;
    this.buf = Buffer.alloc(0);
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (socket !== this.socket) return;
      this.open = false;
      // Everything still unanswered on a closed connection is lost.
      const lost = this.sentAt.slice(this.head).map((at, k) => this.left(at, this.indexes[this.head + k]!));
      this.sentAt = [];
      this.indexes = [];
      this.unsent = [];
      this.head = 0;
      this.writtenAt.clear();
      this.onLoss(lost);
    });
  }

  private left(at: bigint, index: number): { at: bigint; index: number; writtenAt?: bigint } {
    return { at, index, writtenAt: this.writtenAt.get(index) };
  }

  private write(req: Buffer, index: number): void {
    if (this.withBodies) this.writtenAt.set(index, process.hrtime.bigint());
    this.socket.write(req);
  }

  get pending(): number {
    return this.sentAt.length - this.head;
  }

  /** Sends request `index`; false if the connection is closed (and not to be reopened). */
  send(req: Buffer, index: number, reconnect: boolean): boolean {
    if (!this.open) {
      if (!reconnect) return false;
      this.connect();
    }
    this.sentAt.push(process.hrtime.bigint());
    this.indexes.push(index);
    if (this.pipeline || this.pending === 1) this.write(req, index);
    else this.unsent.push(req);
    return true;
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      const end = this.buf.indexOf(CRLFCRLF);
      if (end < 0) return;
      const headText = this.buf.toString('latin1', 0, end);
      const status = Number(headText.slice(9, 12));
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
      const length = m ? Number(m[1]) : 0;
      const total = end + 4 + length;
      if (this.buf.length < total) return;
      // A 503 is a refusal under overload (load shed) when its body carries the code.
      const mark = status === 503 ? this.buf.indexOf(OVERLOADED, end + 4) : -1;
      const overloaded = mark >= 0 && mark < total;
      const body = this.withBodies ? this.buf.subarray(end + 4, total) : undefined;
      this.buf = this.buf.subarray(total);
      const at = this.sentAt[this.head]!;
      const index = this.indexes[this.head++]!;
      if (this.head > 4096) {
        this.sentAt.splice(0, this.head);
        this.indexes.splice(0, this.head);
        this.head = 0;
      }
      if (this.unsent.length > 0) this.write(this.unsent.shift()!, this.indexes[this.head]!);
      const writtenAt = this.writtenAt.get(index);
      this.writtenAt.delete(index);
      if (this.withBodies) this.onAnswer(status, at, index, overloaded, headText, body, writtenAt);
      else this.onAnswer(status, at, index, overloaded);
    }
  }

  /** Closes the connection; what is still unanswered is returned, not reported as lost. */
  close(): Array<{ at: bigint; index: number; writtenAt?: bigint }> {
    const left = this.sentAt.slice(this.head).map((at, k) => this.left(at, this.indexes[this.head + k]!));
    this.writtenAt.clear();
    this.sentAt = [];
    this.indexes = [];
    this.unsent = [];
    this.head = 0;
    this.socket.destroy();
    return left;
  }
}

/** Offers `rate` requests/s for `durationS`, then waits (briefly) for the last answers. */
export async function runOpenLoop(t: Target, o: RunOptions): Promise<RunResult> {
  const rec = new Recorder(o.windowMs);
  let t0 = process.hrtime.bigint();
  const lag = newHistogram();
  const errors: Record<string, number> = {};
  let answered = 0;
  let errorCount = 0;
  /** Requests that will never be answered (connection closed or never opened). */
  let lost = 0;
  const onOutcome = o.onOutcome;
  const ms = (ns: bigint) => Number(ns) / 1e6;
  const conns = Array.from({ length: o.connections }, () => new Connection(t, (status, at, index, overloaded, head, body, writtenAt) => {
    answered++;
    const now = process.hrtime.bigint();
    const outcome = status >= 200 && status < 300 ? 'ok' : overloaded ? 'refused' : 'error';
    rec.record(outcome, Number(now - at) / 1000, Number(at - t0) / 1e9);
    if (outcome === 'error') {
      errors[status] = (errors[status] ?? 0) + 1;
      errorCount++;
    }
    onOutcome?.({ index, sentAtMs: ms(at), writtenAtMs: writtenAt === undefined ? undefined : ms(writtenAt), latencyMs: ms(now - at), status, head, body });
  }, (gone) => {
    const n = gone.length;
    if (n > 0) {
      errors.error = (errors.error ?? 0) + n;
      errorCount += n;
      lost += n;
      const now = process.hrtime.bigint();
      if (onOutcome) for (const g of gone) onOutcome({ index: g.index, sentAtMs: ms(g.at), writtenAtMs: g.writtenAt === undefined ? undefined : ms(g.writtenAt), latencyMs: ms(now - g.at), status: 0 });
    }
  }, onOutcome !== undefined, o.pipeline ?? true));
  await new Promise((r) => setTimeout(r, 50)); // let the connections open
  t0 = process.hrtime.bigint();
  // Round-robin over the connections; one that has closed loses its share.
  const run = await pace(o, lag, (i) => {
    const c = conns[i % conns.length]!;
    if (!c.send(t.requests[i % t.requests.length]!, i, o.reconnect === true)) {
      errors.error = (errors.error ?? 0) + 1;
      errorCount++;
      lost++;
      onOutcome?.({ index: i, sentAtMs: Number(process.hrtime.bigint()) / 1e6, latencyMs: 0, status: 0 });
    }
  }, () => ({ answered, lost, errors: errorCount }));
  const unanswered = run.sent - answered - lost;
  if (unanswered > 0) errors.timeout = unanswered;
  const end = process.hrtime.bigint();
  for (const c of conns) {
    for (const g of c.close()) onOutcome?.({ index: g.index, sentAtMs: ms(g.at), writtenAtMs: g.writtenAt === undefined ? undefined : ms(g.writtenAt), latencyMs: ms(end - g.at), status: 0 });
  }
  return {
    offeredRate: o.rate,
    sent: run.sent,
    answered,
    errors,
    ...rec.fields(),
    lagHistogram: hdr.encodeIntoCompressedBase64(lag),
    wallS: run.wallS,
    cpu: run.cpu,
  };
}
