/**
 * A slow model (fixture sleeping 300 ms per request on the pool: slow, not CPU-bound) beside a fast one (inline
 * logistic). Expected: the fast model's p99 stays bounded relative to its baseline measured
 * alone in the same run, with no failures; the slow model's requests carry a 400 ms deadline
 * and each is answered 200 in time, 504 DEADLINE_EXCEEDED or refused at once with 503
 * OVERLOADED, never left hanging.
 */
import { inferRequests, inputs, writeFixture, writeLogistic } from '../fixtures.js';
import { ok, outcomeLabel, percentile, type Answer } from '../load.js';
import { check, memoryCheck, type Scenario } from '../scenario.js';

const SLOW_MS = 300;
const DEADLINE_MS = 400;
/** A slow request is answered by its deadline plus one running batch plus slack, or it hangs. */
const SLOW_ANSWER_BOUND_MS = DEADLINE_MS + SLOW_MS + 1_000;
/** The fast model's p99 beside the slow one, against its p99 alone. */
const P99_FACTOR = 3;
const P99_SLACK_MS = 20;

export const slowModel: Scenario = {
  name: 'slow-model',
  description: 'a 300 ms model beside a fast one: fast p99 bounded, slow requests honour deadlines (504 DEADLINE_EXCEEDED)',
  needs: [],
  fast: true,
  async run(ctx) {
    const repo = await ctx.tmpDir();
    await writeLogistic(repo, 'fast', 1);
    await writeFixture(repo, 'slow', 1, { op: 'sum', sleep_us: SLOW_MS * 1000 }, { maxBatch: 1, queue: 64 });
    const s = await ctx.sluice({ repo, workers: 1 });
    const fastRequests = inferRequests(s.http, 'fast', 'features', inputs(16));
    const fastLoad = (durationS: number) => ctx.load({ url: s.http, model: 'fast', rate: 200, durationS, requests: fastRequests });
    await (fastLoad(1)).done; // warm-up
    const rssBefore = await s.rssMb();
    const baseline = await fastLoad(4).done;
    const beside = fastLoad(6);
    // 6/s offered against one worker's ~3.3/s: the slow model's queue grows, deadlines expire.
    // Connections enough that no request waits for one on the client side.
    const slow = ctx.load({ url: s.http, model: 'slow', rate: 6, durationS: 5, connections: 64,
      requests: inferRequests(s.http, 'slow', 'x', [[1, 2, 3, 4]], { 'Timeout-Ms': String(DEADLINE_MS) }) });
    const [during, slowRun] = await Promise.all([beside.done, slow.done]);
    const rssAfter = await s.rssMb();
    const p99 = (a: Answer[]) => percentile(a.map((x) => x.latencyMs), 99);
    const baseP99 = p99(baseline.answers);
    const duringP99 = p99(during.answers);
    const limit = baseP99 * P99_FACTOR + P99_SLACK_MS;
    const fastFailed = [...baseline.answers, ...during.answers].filter((a) => !ok(a)).length;
    const slowCounts: Record<string, number> = {};
    for (const a of slowRun.answers) slowCounts[outcomeLabel(a)] = (slowCounts[outcomeLabel(a)] ?? 0) + 1;
    // Offered about twice what it can serve, the slow model may also refuse at once (its
    // queueing delay drives the in-flight limit on pooled requests down): a coded refusal.
    const slowBad = slowRun.answers.filter((a) => !(a.status === 200 || (a.status === 504 && a.code === 'DEADLINE_EXCEEDED')
      || (a.status === 503 && a.code === 'OVERLOADED')));
    const slowMax = Math.max(...slowRun.answers.map((a) => a.latencyMs));
    const expired = slowCounts['504 DEADLINE_EXCEEDED'] ?? 0;
    return {
      checks: [
        check('fast model: 0 failed requests', fastFailed === 0, `${fastFailed} failed`),
        check(`fast model p99 beside the slow one <= ${P99_FACTOR}x its p99 alone + ${P99_SLACK_MS} ms`, duringP99 <= limit,
          `alone ${baseP99.toFixed(1)} ms, beside ${duringP99.toFixed(1)} ms (limit ${limit.toFixed(1)} ms)`),
        check('slow model: every request answered 200, 504 DEADLINE_EXCEEDED or 503 OVERLOADED', slowBad.length === 0 && slowRun.answers.length > 0,
          JSON.stringify(slowCounts)),
        check('slow model: some deadlines expired (the scenario exercised them)', expired > 0, `${expired} x 504`),
        check(`slow model: every answer within ${SLOW_ANSWER_BOUND_MS} ms (deadline ${DEADLINE_MS} + one ${SLOW_MS} ms run + 1000 slack)`, slowMax <= SLOW_ANSWER_BOUND_MS,
          `slowest ${slowMax.toFixed(0)} ms`),
        memoryCheck('sluice', rssBefore, rssAfter),
      ],
      figures: {
        'fast alone': `sent ${baseline.answers.length}, p50 ${percentile(baseline.answers.map((a) => a.latencyMs), 50).toFixed(1)} ms, p99 ${baseP99.toFixed(1)} ms`,
        'fast beside slow': `sent ${during.answers.length}, p50 ${percentile(during.answers.map((a) => a.latencyMs), 50).toFixed(1)} ms, p99 ${duringP99.toFixed(1)} ms (${(duringP99 / baseP99).toFixed(2)}x)`,
        'slow requests': `${slowRun.answers.length}: ${JSON.stringify(slowCounts)}, slowest ${slowMax.toFixed(0)} ms`,
        'RSS before/after': `${rssBefore.toFixed(0)} / ${rssAfter.toFixed(0)} MB`,
      },
    };
  },
};
