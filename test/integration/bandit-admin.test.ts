/**
 * A whole server (PGlite, two I/O threads): a bandit route moves demo-logistic's traffic to the
 * variant whose rewards are better, with the published weight as each answer's propensity; and
 * off-policy evaluation of demo-bandit's logged decisions over HTTP and through
 * `sluice policies evaluate`, with its refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoBody, postJson } from '../helpers/http.js';
import { sluice } from '../helpers/cli.js';
import { admin, logisticVersion, registerBody, startFull, type FullServer } from '../helpers/server.js';
import { mulberry32 } from '../../src/learn/bandit/simulation.js';

describe('bandit routes and off-policy evaluation over HTTP', () => {
  let s: FullServer;

  beforeAll(async () => {
    s = await startFull({ ioThreads: 2, admission: false });
    const v2 = logisticVersion(2);
    const reg = registerBody({ manifest: v2.manifest, version: '2' }, v2.payload);
    expect((await admin(s, s.adminKey, 'POST', '/v1/admin/models/demo-logistic/versions', reg.body, reg.headers)).status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('a bandit route shifts traffic to the better variant; each answer carries its published weight', async () => {
    const route = {
      variants: [{ name: 'control', version: '1', weight: 0.5 }, { name: 'treatment', version: '2', weight: 0.5 }],
      assignment: 'bandit', bandit: { burn_in: 20, min_share: 0.05, update_ms: 20 },
    };
    const set = await admin(s, s.adminKey, 'PUT', '/v1/admin/models/demo-logistic/route', route);
    expect(set.status, JSON.stringify(set.json)).toBe(200);
    expect((await admin(s, s.adminKey, 'GET', '/v1/admin/models/demo-logistic/route')).json.route.bandit).toEqual({ min_share: 0.05, burn_in: 20, reward: 'bernoulli', update_ms: 20 });
    const u = mulberry32(9);
    const rate: Record<string, number> = { control: 0.2, treatment: 0.8 };
    const late: Array<{ variant: string; propensity: number }> = [];
    for (let round = 0; round < 12; round++) {
      const answers = await Promise.all(Array.from({ length: 25 }, () => postJson(`${s.url}/v2/models/demo-logistic/infer`, demoBody(1, 0.1))));
      const events = answers.map((a) => {
        const p = a.json.parameters;
        expect(p.propensity).toBeGreaterThan(0);
        if (round >= 9) late.push({ variant: p.variant, propensity: p.propensity });
        return { event_id: p.event_id, reward: u() < rate[p.variant]! ? 1 : 0 };
      });
      const fb = await admin(s, s.adminKey, 'POST', '/v1/feedback', { events });
      expect(fb.status).toBe(200);
      await new Promise((r) => setTimeout(r, 60));
    }
    const treated = late.filter((a) => a.variant === 'treatment');
    expect(treated.length / late.length).toBeGreaterThan(0.7);
    // Past burn-in the weights are 0.05 + 0.9 P(best): the treatment's is near 0.95.
    expect(Math.max(...treated.map((a) => a.propensity))).toBeGreaterThan(0.8);
    // The control's weight, read from every late answer (two variants: the weights sum to 1). At
    // ~0.05 the control may get none of the 75 late requests (~2% of runs), so its own answers
    // alone cannot be required.
    const controlWeights = late.map((a) => (a.variant === 'control' ? a.propensity : 1 - a.propensity));
    expect(Math.min(...controlWeights)).toBeLessThan(0.2);
    await admin(s, s.adminKey, 'DELETE', '/v1/admin/models/demo-logistic/route', {});
  });

  it('evaluates candidate policies on demo-bandit\'s logged decisions, and refuses bad requests', async () => {
    const u = mulberry32(4);
    let logged = 0;
    for (let i = 0; i < 15; i++) {
      const data = Array.from({ length: 2 * 100 }, () => u() * 2 - 1);
      const r = await postJson(`${s.url}/v2/models/demo-bandit/infer`, { inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 100], data }] });
      const ids = (r.json.parameters.event_ids as string).split(',');
      const arms = r.json.outputs[0].data as number[];
      const fb = await admin(s, s.adminKey, 'POST', '/v1/feedback', { events: ids.map((id, j) => ({ event_id: id, reward: arms[j] === 2 ? 1 : 0 })) });
      expect(fb.json.results.every((x: { status?: string }) => x.status === 'accepted')).toBe(true);
      logged += ids.length;
    }
    const evaluate = (body: unknown, key = s.adminKey, model = 'demo-bandit') => admin(s, key, 'POST', `/v1/admin/models/${model}/evaluate`, body);
    const uniform = await evaluate({ policy: 'uniform', version: '1' });
    expect(uniform.status, JSON.stringify(uniform.json)).toBe(200);
    expect(uniform.json).toMatchObject({ model: 'demo-bandit', version: '1', n: logged, policy: 'uniform' });
    for (const k of ['ips', 'snips', 'dr']) expect(Number.isFinite(uniform.json[k].value), k).toBe(true);
    // Arm 2 always pays 1 and the others 0: a policy always choosing it is worth ~1 (SNIPS exactly,
    // when it was ever logged), arm 0 is worth 0.
    const arm2 = await evaluate({ policy: { arm: 2 } });
    const arm0 = await evaluate({ policy: { arm: 0 } });
    expect(arm0.json.ips.value).toBe(0);
    if (arm2.json.snips.value !== null) expect(arm2.json.snips.value).toBeCloseTo(1, 12);
    const self = await evaluate({ policy: { version: '1' }, level: 0.9 });
    expect(self.status, JSON.stringify(self.json)).toBe(200);
    expect(self.json.policy).toBe('version:1');
    expect(self.json.level).toBe(0.9);

    expect(await evaluate({ policy: 'greedy' })).toMatchObject({ status: 400, json: { code: 'OPE_INVALID' } });
    expect(await evaluate({ policy: 'uniform', colour: 1 })).toMatchObject({ status: 400, json: { code: 'OPE_INVALID' } });
    expect(await evaluate({ policy: 'uniform' }, s.adminKey, 'demo-onnx')).toMatchObject({ status: 422, json: { code: 'NO_LOGGED_EVENTS' } });
    expect(await evaluate({ policy: { version: '1' } }, s.adminKey, 'demo-onnx')).toMatchObject({ status: 400, json: { code: 'OPE_INVALID', error: expect.stringMatching(/not a bandit/) } });
    const predictKey = (await admin(s, s.adminKey, 'POST', '/v1/admin/keys', { name: 'p', scopes: ['predict'] })).json.secret;
    expect((await evaluate({ policy: 'uniform' }, predictKey)).status).toBe(403);

    const url = ['--url', s.url, '--key', s.adminKey];
    const cli = await sluice(['policies', 'evaluate', 'demo-bandit', '--policy', 'arm:2', '--json', ...url]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ n: logged, policy: 'arm:2' });
    const table = await sluice(['policies', 'evaluate', 'demo-bandit', '--policy', 'uniform', ...url]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/SNIPS/);
    const bad = await sluice(['policies', 'evaluate', 'demo-bandit', '--policy', 'arm:-1', ...url]);
    expect(bad.code).toBe(1);
  });
});
