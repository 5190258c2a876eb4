/**
 * SIGKILL under load, then a restart on the same data directory and port. Expected: the
 * restarted server serves again within RESTART_BOUND_MS of the kill; a promotion acknowledged
 * before the kill is still in force (production version and the answers' version); no request
 * fails outside [kill, serving again).
 */
import { inferRequests, inputs, writeLogistic } from '../fixtures.js';
import { tally, tallyFigures } from '../load.js';
import { check, memoryCheck, type Scenario } from '../scenario.js';

/** From SIGKILL to the first successful inference on the restarted server. */
const RESTART_BOUND_MS = 20_000;

export const killRestart: Scenario = {
  name: 'kill-restart',
  description: 'SIGKILL under load and restart: serving again within 20 s, a promotion made before the kill intact',
  needs: [],
  fast: false,
  async run(ctx) {
    const repo = await ctx.tmpDir();
    await writeLogistic(repo, 'kr', 1);
    await writeLogistic(repo, 'kr', 2);
    const dataDir = await ctx.tmpDir('sluice-chaos-data-');
    const httpPort = await ctx.freePort();
    const opts = { repo, dataDir, httpPort };
    const first = await ctx.sluice(opts);
    // The import made 2 production; this promotion is acknowledged before the kill.
    const promoted = await ctx.admin(first.http, 'POST', '/v1/admin/models/kr/promote', { version: '1', reason: 'chaos: before the kill' });
    if (promoted.status !== 200) throw new Error(`promote answered ${promoted.status} ${JSON.stringify(promoted.body)}`);
    await ctx.until('the promotion to serve', async () => ((await ctx.infer(first.http, 'kr', 'features', inputs(1)[0]!)).body?.model_version === '1' ? true : undefined), 5_000);
    const rssBefore = await first.rssMb();
    const t0 = ctx.now();
    const load = ctx.load({ url: first.http, model: 'kr', rate: 200, durationS: 20, requests: inferRequests(first.http, 'kr', 'features', inputs(16)) });
    await ctx.sleep(3_000);
    const killedAt = ctx.now();
    first.proc.child.kill('SIGKILL');
    await first.exited;
    const second = await ctx.sluice(opts);
    await ctx.until('inference on the restarted server', async () => ((await ctx.infer(second.http, 'kr', 'features', inputs(1)[0]!)).status === 200 ? true : undefined), RESTART_BOUND_MS);
    const servingAt = ctx.now();
    const recoveryMs = servingAt - killedAt;
    const show = await ctx.admin(second.http, 'GET', '/v1/admin/models/kr');
    const answer = await ctx.infer(second.http, 'kr', 'features', inputs(1)[0]!);
    const { answers } = await load.done;
    const rssAfter = await second.rssMb();
    const windows = tally(answers, [
      { name: 'before the kill', from: t0, to: killedAt },
      { name: 'kill to serving again', from: killedAt, to: servingAt },
      { name: 'after serving again', from: servingAt, to: Infinity },
    ]);
    const outside = windows['before the kill']!.failed + windows['after serving again']!.failed;
    const production = show.body?.productionVersion ?? JSON.stringify(show.body).slice(0, 200);
    return {
      checks: [
        check(`serving again within ${RESTART_BOUND_MS} ms of SIGKILL`, recoveryMs <= RESTART_BOUND_MS, `${recoveryMs.toFixed(0)} ms (restart to "serving" ${second.proc.startMs} ms)`),
        check('the promotion made before the kill is still production', show.status === 200 && String(production) === '1', `production: ${production}`),
        check('answers after the restart come from the promoted version', answer.body?.model_version === '1', `model_version ${answer.body?.model_version}`),
        check('0 failed requests outside [kill, serving again)', outside === 0, `${outside} failed outside`),
        memoryCheck('sluice (restarted vs first)', rssBefore, rssAfter),
      ],
      figures: {
        ...tallyFigures('requests', windows),
        'recovery (SIGKILL to first successful inference)': `${recoveryMs.toFixed(0)} ms`,
        'RSS first before / restarted after': `${rssBefore.toFixed(0)} / ${rssAfter.toFixed(0)} MB`,
      },
    };
  },
};
