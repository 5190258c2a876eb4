/**
 * The artifact store (S3, moto behind a cuttable proxy: moto keeps objects in memory, so the
 * fault is a network cut, which loses nothing) goes away under load and comes back.
 * Expected: inference serves throughout with 0 failures; while S3 is away an upload (register)
 * and a swap to a version not in the local cache fail cleanly (503 ARTIFACT_UNAVAILABLE, the
 * serving version unchanged); after recovery both succeed.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { inferRequests, inputs, logisticUpload, writeLogistic } from '../fixtures.js';
import { ok, tally, tallyFigures } from '../load.js';
import type { HttpAnswer } from '../context.js';
import { check, memoryCheck, type Scenario } from '../scenario.js';

const OUTAGE_MS = 5_000;
/** A call needing S3 fails within this while it is away (bounded timeouts, few retries). */
const FAIL_FAST_MS = 10_000;
/** After S3 is back, the same calls succeed within this. */
const RECOVERY_MS = 15_000;

export const s3Down: Scenario = {
  name: 's3-down',
  description: 'S3 unreachable under load and back: serving continues, an upload and an uncached swap fail with 503 then succeed',
  needs: ['s3'],
  fast: false,
  async run(ctx) {
    const s3 = await ctx.s3();
    const repo = await ctx.tmpDir();
    await writeLogistic(repo, 'art', 1);
    await writeLogistic(repo, 'art', 2);
    const dataDir = await ctx.tmpDir('sluice-chaos-data-');
    const s = await ctx.sluice({ repo, dataDir, env: s3.env });
    // Serve 1 (2 became production at import), and forget the local copies so a swap to 2 needs S3.
    const back = await ctx.admin(s.http, 'POST', '/v2/repository/models/art/load', { parameters: { version: '1' } });
    if (back.status !== 200) throw new Error(`load 1 answered ${back.status} ${JSON.stringify(back.body)}`);
    await rm(path.join(dataDir, 'artifact-cache'), { recursive: true, force: true });
    const rssBefore = await s.rssMb();
    const t0 = ctx.now();
    const load = ctx.load({ url: s.http, model: 'art', rate: 200, durationS: 14, requests: inferRequests(s.http, 'art', 'features', inputs(16)) });
    await ctx.sleep(2_000);
    const downAt = ctx.now();
    await s3.down();
    const upload = logisticUpload('art', 3, 1 << 20);
    const duringUpload = await ctx.admin(s.http, 'POST', '/v1/admin/models/art/versions', upload.body, upload.headers);
    const duringSwap = await ctx.admin(s.http, 'POST', '/v2/repository/models/art/load', { parameters: { version: '2' } });
    const servingDuring = (await ctx.infer(s.http, 'art', 'features', inputs(1)[0]!)).body?.model_version;
    await ctx.sleep(Math.max(0, OUTAGE_MS - (ctx.now() - downAt)));
    await s3.up();
    const upAt = ctx.now();
    let uploadAfter: HttpAnswer = { status: 0, body: undefined, retryAfter: null, ms: 0 };
    let swapAfter: HttpAnswer = { status: 0, body: undefined, retryAfter: null, ms: 0 };
    let recoveredMs = NaN;
    try {
      recoveredMs = (await ctx.until('an upload to succeed after S3 is back', async () => {
        uploadAfter = await ctx.admin(s.http, 'POST', '/v1/admin/models/art/versions', upload.body, upload.headers);
        return uploadAfter.status === 200 ? true : undefined;
      }, RECOVERY_MS, 250)).ms;
      swapAfter = await ctx.admin(s.http, 'POST', '/v2/repository/models/art/load', { parameters: { version: '2' } });
    } catch { /* reported below */ }
    const servingAfter = (await ctx.infer(s.http, 'art', 'features', inputs(1)[0]!)).body?.model_version;
    const { answers } = await load.done;
    const rssAfter = await s.rssMb();
    const windows = tally(answers, [
      { name: 'before the outage', from: t0, to: downAt },
      { name: 'during the outage', from: downAt, to: upAt },
      { name: 'after the outage', from: upAt, to: Infinity },
    ]);
    const failed = answers.filter((a) => !ok(a)).length;
    const clean = (a: HttpAnswer) => a.status === 503 && a.body?.code === 'ARTIFACT_UNAVAILABLE' && a.ms <= FAIL_FAST_MS;
    const say = (a: HttpAnswer) => `${a.status} ${a.body?.code ?? ''} in ${a.ms.toFixed(0)} ms`;
    return {
      checks: [
        check('0 failed inference requests, before, during and after', failed === 0, `${failed} failed of ${answers.length}`),
        check(`upload during the outage: 503 ARTIFACT_UNAVAILABLE within ${FAIL_FAST_MS} ms`, clean(duringUpload), say(duringUpload)),
        check(`swap to an uncached version during the outage: 503 ARTIFACT_UNAVAILABLE within ${FAIL_FAST_MS} ms, still serving version 1`, clean(duringSwap) && servingDuring === '1',
          `${say(duringSwap)}; serving ${servingDuring}`),
        check(`after S3 is back: the upload succeeds within ${RECOVERY_MS} ms`, uploadAfter.status === 200, `${say(uploadAfter)} (${recoveredMs.toFixed(0)} ms after)`),
        check('after S3 is back: the swap succeeds and serves version 2', swapAfter.status === 200 && servingAfter === '2', `${say(swapAfter)}; serving ${servingAfter}`),
        memoryCheck('sluice', rssBefore, rssAfter),
      ],
      figures: {
        ...tallyFigures('requests', windows),
        'outage': `${(upAt - downAt).toFixed(0)} ms`,
        'upload works again after': `${recoveredMs.toFixed(0)} ms`,
        'RSS before/after': `${rssBefore.toFixed(0)} / ${rssAfter.toFixed(0)} MB`,
      },
    };
  },
};
