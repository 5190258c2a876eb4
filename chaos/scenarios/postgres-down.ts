/**
 * The registry's PostgreSQL (a private server, SLUICE_DATABASE_URL) stops under load and comes
 * back. Expected: inference serves throughout with 0 failures; admin calls fail fast with
 * 503 REGISTRY_UNAVAILABLE meanwhile and work again after; a promotion acknowledged before the
 * outage is still in force; the watcher's LISTEN connection reconnects, so a promotion after
 * the outage reaches the engine through NOTIFY (the periodic reconcile is a minute away).
 */
import { inferRequests, inputs, writeLogistic } from '../fixtures.js';
import { ok, tally, tallyFigures } from '../load.js';
import type { HttpAnswer } from '../context.js';
import { check, memoryCheck, type Scenario } from '../scenario.js';

const OUTAGE_MS = 5_000;
/** Admin calls during the outage fail within this (not after a long connect timeout). */
const ADMIN_FAIL_FAST_MS = 3_500;
/** After PostgreSQL is back: admin calls answer again within this. */
const ADMIN_RECOVERY_MS = 15_000;
/** After recovery, a promotion is served within this (NOTIFY, not the 60 s reconcile). */
const PROMOTION_VISIBLE_MS = 2_000;

export const postgresDown: Scenario = {
  name: 'postgres-down',
  description: 'PostgreSQL stops and restarts under load: 0 inference failures, admin 503 REGISTRY_UNAVAILABLE then back, LISTEN reconnects',
  needs: ['postgres'],
  fast: false,
  async run(ctx) {
    const pg = await ctx.postgres();
    const repo = await ctx.tmpDir();
    await writeLogistic(repo, 'reg', 1);
    await writeLogistic(repo, 'reg', 2);
    const s = await ctx.sluice({ repo, env: { SLUICE_DATABASE_URL: pg.url, SLUICE_REGISTRY_RECONCILE_MS: '60000' } });
    const promoted = await ctx.admin(s.http, 'POST', '/v1/admin/models/reg/promote', { version: '1', reason: 'chaos: before the outage' });
    if (promoted.status !== 200) throw new Error(`promote answered ${promoted.status} ${JSON.stringify(promoted.body)}`);
    const row = inputs(1)[0]!;
    await ctx.until('the promotion to serve', async () => ((await ctx.infer(s.http, 'reg', 'features', row)).body?.model_version === '1' ? true : undefined), 5_000);
    const rssBefore = await s.rssMb();
    const t0 = ctx.now();
    const load = ctx.load({ url: s.http, model: 'reg', rate: 200, durationS: 14, requests: inferRequests(s.http, 'reg', 'features', inputs(16)) });
    await ctx.sleep(2_000);
    const downAt = ctx.now();
    await pg.stop();
    const duringRead = await ctx.admin(s.http, 'GET', '/v1/admin/models');
    const duringWrite = await ctx.admin(s.http, 'POST', '/v1/admin/models/reg/promote', { version: '2', reason: 'chaos: during the outage' });
    await ctx.sleep(Math.max(0, OUTAGE_MS - (ctx.now() - downAt)));
    await pg.start();
    const upAt = ctx.now();
    let adminBack = { ms: NaN };
    try {
      adminBack = await ctx.until('admin calls to work again', async () => ((await ctx.admin(s.http, 'GET', '/v1/admin/models')).status === 200 ? true : undefined), ADMIN_RECOVERY_MS, 200);
    } catch { /* reported below */ }
    const show = await ctx.admin(s.http, 'GET', '/v1/admin/models/reg');
    const stillOne = show.body?.productionVersion;
    // LISTEN must have reconnected for this promotion to be served before the reconcile.
    await ctx.until('LISTEN to reconnect', async () => (s.logs.some((l) => l.includes('LISTEN connection back')) ? true : undefined), ADMIN_RECOVERY_MS, 100).catch(() => undefined);
    const after = await ctx.admin(s.http, 'POST', '/v1/admin/models/reg/promote', { version: '2', reason: 'chaos: after the outage' });
    let visibleMs = NaN;
    try {
      visibleMs = (await ctx.until('the promotion after recovery to serve', async () => ((await ctx.infer(s.http, 'reg', 'features', row)).body?.model_version === '2' ? true : undefined), PROMOTION_VISIBLE_MS, 20)).ms;
    } catch { /* reported below */ }
    const { answers } = await load.done;
    const rssAfter = await s.rssMb();
    const windows = tally(answers, [
      { name: 'before the outage', from: t0, to: downAt },
      { name: 'during the outage', from: downAt, to: upAt },
      { name: 'after the outage', from: upAt, to: Infinity },
    ]);
    const failed = answers.filter((a) => !ok(a)).length;
    const coded = (a: HttpAnswer) => a.status === 503 && a.body?.code === 'REGISTRY_UNAVAILABLE' && a.ms <= ADMIN_FAIL_FAST_MS;
    return {
      checks: [
        check('0 failed inference requests, before, during and after', failed === 0, `${failed} failed of ${answers.length}`),
        check(`admin read and write during the outage: 503 REGISTRY_UNAVAILABLE within ${ADMIN_FAIL_FAST_MS} ms`, coded(duringRead) && coded(duringWrite),
          `read ${duringRead.status} ${duringRead.body?.code} in ${duringRead.ms.toFixed(0)} ms; write ${duringWrite.status} ${duringWrite.body?.code} in ${duringWrite.ms.toFixed(0)} ms`),
        check(`admin calls work within ${ADMIN_RECOVERY_MS} ms of PostgreSQL's return`, Number.isFinite(adminBack.ms), `${adminBack.ms.toFixed(0)} ms`),
        check('the promotion acknowledged before the outage is still production', String(stillOne) === '1', `production: ${stillOne}`),
        check(`a promotion after recovery is served within ${PROMOTION_VISIBLE_MS} ms (LISTEN reconnected)`, after.status === 200 && Number.isFinite(visibleMs),
          `promote ${after.status}; served after ${visibleMs.toFixed(0)} ms`),
        memoryCheck('sluice', rssBefore, rssAfter),
      ],
      figures: {
        ...tallyFigures('requests', windows),
        'outage': `${(upAt - downAt).toFixed(0)} ms`,
        'admin back after PostgreSQL start': `${adminBack.ms.toFixed(0)} ms`,
        'promotion after recovery served in': `${visibleMs.toFixed(0)} ms`,
        'RSS before/after': `${rssBefore.toFixed(0)} / ${rssAfter.toFixed(0)} MB`,
      },
    };
  },
};
