/**
 * Hot-swap storm under load: promotions through the admin API (reaching the engine through the
 * registry watcher) and repository load calls (straight to the engine) alternate as fast as
 * they are answered, across four versions whose answers differ (weights scaled by v, bias v/4).
 * Expected: no failed request, and every answer is exactly what the version it names computes.
 */
import { expectedLogistic, inferRequests, inputs, writeLogistic } from '../fixtures.js';
import { ok, tally, tallyFigures } from '../load.js';
import { check, memoryCheck, type Scenario } from '../scenario.js';

const VERSIONS = [1, 2, 3, 4];
const STORM_MS = 7_000;
/** float32 compute against the float64 reference. */
const TOLERANCE = 1e-5;

export const swapStorm: Scenario = {
  name: 'swap-storm',
  description: 'promote and repository-load calls in a storm under load: 0 failures, each answer matches the version it names',
  needs: [],
  fast: true,
  async run(ctx) {
    const repo = await ctx.tmpDir();
    for (const v of VERSIONS) await writeLogistic(repo, 'storm', v);
    const s = await ctx.sluice({ repo });
    const rows = inputs(32);
    const t0 = ctx.now();
    const load = ctx.load({ url: s.http, model: 'storm', rate: 300, durationS: STORM_MS / 1000 + 4, keepBodies: true, requests: inferRequests(s.http, 'storm', 'features', rows) });
    await ctx.sleep(2_000);
    const rssBefore = await s.rssMb();
    const stormFrom = ctx.now();
    let swaps = 0;
    const adminFailures: string[] = [];
    for (let k = 0; ctx.now() - stormFrom < STORM_MS; k++) {
      const version = String(VERSIONS[k % VERSIONS.length]);
      const r = k % 2 === 0
        ? await ctx.admin(s.http, 'POST', '/v1/admin/models/storm/promote', { version, reason: 'chaos swap storm' })
        : await ctx.admin(s.http, 'POST', '/v2/repository/models/storm/load', { parameters: { version } });
      if (r.status === 200) swaps++;
      else adminFailures.push(`${r.status} ${r.body?.code ?? ''}`);
    }
    const stormTo = ctx.now();
    const { answers } = await load.done;
    const rssAfter = await s.rssMb();
    const seen = new Map<string, number>();
    const wrong: string[] = [];
    for (const a of answers.filter(ok)) {
      const doc = JSON.parse(a.body!.toString('utf8')) as { model_version: string; outputs: Array<{ data: number[] }> };
      seen.set(doc.model_version, (seen.get(doc.model_version) ?? 0) + 1);
      const got = doc.outputs[0]!.data[0]!;
      const want = expectedLogistic(rows[a.index % rows.length]!, Number(doc.model_version));
      if (!(Math.abs(got - want) <= TOLERANCE) && wrong.length < 5) wrong.push(`#${a.index} v${doc.model_version}: ${got} != ${want}`);
    }
    const windows = tally(answers, [
      { name: 'before the storm', from: t0, to: stormFrom },
      { name: 'during the storm', from: stormFrom, to: stormTo },
      { name: 'after the storm', from: stormTo, to: Infinity },
    ]);
    const failed = answers.filter((a) => !ok(a)).length;
    return {
      checks: [
        check('0 failed inference requests', failed === 0, `${failed} failed of ${answers.length}`),
        check(`every answer equals its named version's output (within ${TOLERANCE})`, wrong.length === 0, wrong.join('; ') || `${answers.filter(ok).length} answers checked`),
        check('every promote/load call succeeded', adminFailures.length === 0, `${swaps} swaps ok${adminFailures.length ? `, failed: ${adminFailures.slice(0, 5).join(', ')}` : ''}`),
        check('the answers came from more than one version (the storm swapped)', seen.size > 1, [...seen].map(([v, n]) => `v${v}: ${n}`).join(', ')),
        memoryCheck('sluice', rssBefore, rssAfter),
      ],
      figures: {
        ...tallyFigures('requests', windows),
        'swaps in the storm': `${swaps} in ${((stormTo - stormFrom) / 1000).toFixed(1)} s`,
        'answers by version': [...seen].map(([v, n]) => `v${v}: ${n}`).join(', '),
        'RSS before/after': `${rssBefore.toFixed(0)} / ${rssAfter.toFixed(0)} MB`,
      },
    };
  },
};
