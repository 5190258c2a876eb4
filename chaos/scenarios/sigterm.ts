/**
 * SIGTERM under load, with SLUICE_DRAIN_GRACE_MS (the load-balancer case): readiness turns
 * false at once, the listeners stay open and answer for the grace period (new connections
 * included) so the balancer can notice, then close; in-flight requests finish; exit 0.
 * Expected: every request that reached the wire before the signal or during the grace is
 * answered 200; the only failures are requests refused after the listeners close; exit 0.
 *
 * Requests are counted by when they were written, not when the schedule made them due: the load
 * keeps one request on the wire per connection, so one due while its connection's previous
 * answer is still pending waits on the client, and if that answer comes after the grace it is
 * written to a server that has stopped taking work (503 SHUTTING_DOWN, Connection: close; the
 * rest of that connection's queue is then never written). That is the server doing what
 * Kubernetes expects, not a request lost during the grace; such requests are reported apart.
 */
import { Agent, fetch } from 'undici';
import { inferRequests, writeFixture } from '../fixtures.js';
import { ok, outcomeLabel, tally, tallyFigures } from '../load.js';
import { check, type Scenario } from '../scenario.js';

const GRACE_MS = 2_000;
/** From the end of the grace: in-flight requests finish and the process exits within this. */
const EXIT_BOUND_MS = 5_000;

async function probe(url: string, init: Parameters<typeof fetch>[1] = {}): Promise<string> {
  const dispatcher = new Agent({ connections: 1 }); // a new connection, as a balancer's health check or a new client
  try {
    const r = await fetch(url, { ...init, dispatcher, signal: AbortSignal.timeout(2_000) });
    const body = await r.text();
    let code = '';
    try {
      code = (JSON.parse(body) as { code?: string }).code ?? '';
    } catch { /* not JSON */ }
    return `${r.status}${code ? ` ${code}` : ''}`;
  } catch (e) {
    return `no answer (${((e as Error).cause as { code?: string } | undefined)?.code ?? (e as Error).message})`;
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

export const sigterm: Scenario = {
  name: 'sigterm',
  description: 'SIGTERM under load with a 2 s drain grace: answered during the grace (new connections too), in-flight finish, exit 0',
  needs: [],
  fast: false,
  async run(ctx) {
    const repo = await ctx.tmpDir();
    // 20 ms per batch of up to 4: requests are in flight when the signal comes.
    await writeFixture(repo, 'work', 1, { op: 'sum', delay_us: 20_000 }, { maxBatch: 4 });
    const s = await ctx.sluice({ repo, workers: 2, env: { SLUICE_DRAIN_GRACE_MS: String(GRACE_MS) } });
    const requests = inferRequests(s.http, 'work', 'x', [[1, 2, 3, 4]]);
    const t0 = ctx.now();
    const load = ctx.load({ url: s.http, model: 'work', rate: 100, durationS: 8, requests });
    await ctx.sleep(3_000);
    const signalAt = ctx.now();
    s.proc.child.kill('SIGTERM');
    await ctx.sleep(300);
    const readyDuring = await probe(`${s.http}/v2/health/ready`);
    const inferDuring = await probe(`${s.http}/v2/models/work/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: requests[0]!.subarray(requests[0]!.indexOf('\r\n\r\n') + 4) });
    const code = await s.exited;
    const exitedAt = ctx.now();
    const { answers } = await load.done;
    const graceEnd = signalAt + GRACE_MS;
    // By when each request reached the wire (never written: after everything).
    const onWire = answers.map((a) => ({ ...a, t: a.written ?? Infinity }));
    const windows = tally(onWire, [
      { name: 'before SIGTERM', from: t0, to: signalAt },
      { name: 'during the grace', from: signalAt, to: graceEnd },
      { name: 'after the grace', from: graceEnd, to: Infinity },
    ]);
    const before = windows['before SIGTERM']!;
    const grace = windows['during the grace']!;
    const afterFailures = onWire.filter((a) => a.t >= graceEnd && !ok(a));
    const graceFailures = onWire.filter((a) => a.t >= signalAt && a.t < graceEnd && !ok(a));
    const firstGraceFailure = graceFailures.length ? Math.min(...graceFailures.map((a) => a.t)) : undefined;
    // Due during the grace but held on the client (behind a slower answer) past its end.
    const heldPast = answers.filter((a) => a.t >= signalAt && a.t < graceEnd && (a.written ?? Infinity) >= graceEnd);
    const refusedOnly = afterFailures.every((a) => a.status === 0 || (a.status === 503 && a.code === 'SHUTTING_DOWN'));
    const labels = new Set(afterFailures.map(outcomeLabel));
    return {
      checks: [
        check('exit code 0', code === 0, `exit code ${code}`),
        check(`exits within ${EXIT_BOUND_MS} ms after the grace ends`, exitedAt - graceEnd <= EXIT_BOUND_MS, `${(exitedAt - signalAt).toFixed(0)} ms after SIGTERM`),
        check('every request written before SIGTERM answered 200 (in-flight finish)', before.failed === 0, `${before.ok}/${before.sent} ok`),
        check(`every request written during the ${GRACE_MS} ms grace answered 200`, grace.sent > 0 && grace.failed === 0, `${grace.ok}/${grace.sent} ok ${JSON.stringify(grace.byCode)}`),
        check('during the grace a new connection is answered: readiness 503 SHUTTING_DOWN, inference 200',
          readyDuring === '503 SHUTTING_DOWN' && inferDuring === '200', `ready: ${readyDuring}; infer: ${inferDuring}`),
        check('after the grace, failures are only refusals (no answer / 503 SHUTTING_DOWN)', refusedOnly, [...labels].join(', ') || 'none'),
      ],
      figures: {
        ...tallyFigures('requests', windows),
        'SIGTERM to exit': `${(exitedAt - signalAt).toFixed(0)} ms`,
        'first failed request of the grace, written before its end by': firstGraceFailure === undefined ? 'none' : `${(graceEnd - firstGraceFailure).toFixed(0)} ms`,
        'due during the grace, held on the client past its end': `${heldPast.length} (${heldPast.filter((a) => a.written === undefined).length} never written), ${heldPast.filter(ok).length} ok`,
      },
    };
  },
};
