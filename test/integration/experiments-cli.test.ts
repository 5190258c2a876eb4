/**
 * `sluice experiments ...` (src/cli/experiments.ts) against a real server over PGlite, through
 * the built CLI (`npx tsc -p tsconfig.build.json` first): create from a file, list, show, the
 * results table with the figures of the traffic the test drove, weights, covariates from CSV,
 * stop, promote; and the one-line failures, local ones sending nothing. Also the parsing of the
 * CLI's own input and the table's nulls, without a server.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { covariateBodies, parseCovariates } from '../../src/cli/covariates.js';
import { resultsLines, type ResultsJson } from '../../src/cli/experiment-tables.js';
import { parseWeights } from '../../src/cli/experiments.js';
import { sluice } from '../helpers/cli.js';
import { demoBody } from '../helpers/http.js';
import { admin, logisticVersion, registerBody, startFull, until, type FullServer } from '../helpers/server.js';

describe('the CLI\'s own input', () => {
  it('reads covariates from CSV (header optional, CRLF, quoted ids, commas in ids) and JSON; names the bad line', () => {
    expect(parseCovariates('unit_id,value\r\nu1,1.5\r\n\r\n"a ""b"", c",-2\r\nx,y,3e2\n', 'f.csv')).toEqual([['u1', 1.5], ['a "b", c', -2], ['x,y', 300]]);
    expect(parseCovariates('u1,1\nu2,2', 'f.csv')).toEqual([['u1', 1], ['u2', 2]]);
    expect(parseCovariates('\uFEFF [{"unit_id": "u1", "value": 0.5}]', 'f.json')).toEqual([['u1', 0.5]]);
    const cases: Array<[string, RegExp]> = [
      ['u1,1\nu2,\n', /^f line 2: the value must be a finite number$/],
      ['unit_id,value\nu1,1\nu2 2\n', /^f line 3: write unit_id,value$/],
      ['u1,1\nu2,NaN', /^f line 2: the value must be a finite number$/],
      [`u1,1\n${'x'.repeat(129)},1`, /^f line 2: the unit id must be 1 to 128/],
      ['u1,1\n,1', /^f line 2: the unit id/],
      ['unit_id,value\n', /^f holds no covariates/],
      ['[{"unit_id": "u1"}]', /^f item 0: the value must be a finite number$/],
      ['[1]', /^f item 0: write \{"unit_id"/],
      ['[{"unit_id": "u1", "value": 1}', /^cannot read f as JSON/],
    ];
    for (const [text, message] of cases) expect(() => parseCovariates(text, 'f'), text).toThrow(message);
  });

  it('cuts covariates into bodies by count and by bytes, in order, every one sent once', () => {
    const values = Array.from({ length: 25 }, (_, i): [string, number] => [`unit-${i}`, i]);
    const byCount = covariateBodies(values, 10, 1 << 20);
    expect(byCount.map((b) => b.count)).toEqual([10, 10, 5]);
    const sent = byCount.flatMap((b) => (JSON.parse(b.body.toString()) as { covariates: Array<{ unit_id: string; value: number }> }).covariates);
    expect(sent.map((c) => [c.unit_id, c.value])).toEqual(values);
    const item = Buffer.byteLength(JSON.stringify({ unit_id: 'unit-10', value: 10 })) + 1;
    const byBytes = covariateBodies(values.slice(10, 20), 100, item * 3);
    expect(byBytes.map((b) => b.count)).toEqual([3, 3, 3, 1]);
    for (const b of byBytes) expect(b.body.byteLength).toBeLessThanOrEqual(item * 3 + '{"covariates":[]}'.length);
  });

  it('reads variant=weight arguments, refusing other shapes and repeats', () => {
    expect(parseWeights(['control=3', 'treatment=1.5'])).toEqual({ control: 3, treatment: 1.5 });
    for (const bad of ['control', 'control=', '=1', 'control=0', 'control=-1', 'control=x', 'a=b=1']) {
      expect(() => parseWeights([bad]), bad).toThrow(/write variant=weight with a weight > 0/);
    }
    expect(() => parseWeights(['a=1', 'a=2'])).toThrow(/given twice/);
  });

  it('prints "-" for every figure the results leave null', () => {
    const none = { diff: null, ci: null, lift: null, lift_ci: null, p: null, p_holm: null, seq_p: null, seq_p_holm: null };
    const r: ResultsJson = {
      experiment: 'e', model: 'm', status: 'running', elapsed_s: 3725, alpha: 0.05, assignment: 'hash',
      variants: [{ name: 'a', version: '1', control: true, weight: 0.5, units: 1, with_feedback: 0 }, { name: 'b', version: '2', control: false, weight: 0.5, units: 0, with_feedback: 0 }],
      srm: null,
      metrics: [{ name: 'reward', role: 'primary', kind: 'mean', direction: 'increase', test: 'welch t', cuped_theta: null, variants: [{ name: 'a', n: 0, mean: null }, { name: 'b', n: 0, mean: null }], treatments: [{ variant: 'b', ...none }] }],
      decision: { action: 'continue', reason: 'too few units' }, outcome: null, promoted_version: null,
    };
    const lines = resultsLines(r);
    expect(lines[0]).toBe('e on m: running after 1h 2m 5s; hash assignment; alpha 0.05');
    expect(lines.find((l) => l.trim().startsWith('b '))!.trim().split(/\s+/)).toEqual(['b', '0', '-', '-', '-', '-', '-', '-', '-']);
    expect(lines).toContain('SRM: - (no units yet)');
    expect(lines.at(-1)).toBe('decision: continue: too few units');
  });
});

describe('sluice experiments (against a whole server)', () => {
  let s: FullServer;
  let dir: string;
  let url: string[];
  const variantOf = new Map<string, string>();
  const count = (v: string) => [...variantOf.values()].filter((x) => x === v).length;

  const run = async (args: string[]) => {
    const r = await sluice(['experiments', ...args, ...url]);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const api = (method: string, p: string, body?: unknown) => admin(s, s.adminKey, method, p, body);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-cli-exp-'));
    s = await startFull({ experimentIntervalMs: 200, ioThreads: 1 });
    url = ['--url', s.url, '--key', s.adminKey];
    const v2 = logisticVersion(2);
    const reg = registerBody({ manifest: v2.manifest, version: '2' }, v2.payload);
    expect((await admin(s, s.adminKey, 'POST', '/v1/admin/models/demo-logistic/versions', reg.body, reg.headers)).status).toBe(200);
  }, 30_000);
  afterAll(async () => {
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('create from a file, list, show, results with the driven figures, weights, covariates, stop, promote', async () => {
    const definition = {
      name: 'cli-ab', model: 'demo-logistic',
      variants: [{ name: 'control', version: '1', weight: 1 }, { name: 'treatment', version: '2', weight: 1 }],
      primary: { name: 'reward', kind: 'mean' }, secondary: [{ name: 'converted', kind: 'rate' }],
      min_units: 100_000, // never stops by itself here
    };
    expect((await run(['create', '--file', file('def.json', JSON.stringify(definition))])).trim())
      .toMatch(/^cli-ab: running on demo-logistic \(route generation \d+\): control=1, treatment=2$/);

    const list = (await run(['list'])).trim().split('\n');
    expect(list[0]).toMatch(/^name\s+model\s+status\s+variants\s+started\s+decision$/);
    expect(list[1]).toMatch(/^cli-ab\s+demo-logistic\s+running\s+control=1, treatment=2\s+\d{4}-\d\d-\d\dT\S+\s+(-|continue)$/);
    expect(JSON.parse(await run(['list', '--status', 'stopped', '--json']))).toEqual([]);
    expect(JSON.parse(await run(['show', 'cli-ab', '--json']))).toMatchObject({ name: 'cli-ab', status: 'running', spec: { control: 'control', min_units: 100_000 } });
    const shown = await run(['show', 'cli-ab']);
    expect(shown).toMatch(/^cli-ab on demo-logistic: running, started \S+ by admin$/m);
    expect(shown).toMatch(/^variants: control=1 50% \(control\), treatment=2 50%; hash assignment$/m);
    expect(shown).toMatch(/^primary: reward \(mean, increase\)$/m);

    // 40 units, each one request and one reward: 1 for the treatment, 0 or 1 alternately for the control.
    const events: Array<{ event_id: string; reward: number }> = [];
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(demoBody(1, 0.1, { parameters: { unit_id: `u${i}` } })) });
      const j = (await res.json()) as { parameters: { event_id: string; variant: string } };
      variantOf.set(`u${i}`, j.parameters.variant);
      events.push({ event_id: j.parameters.event_id, reward: j.parameters.variant === 'treatment' ? 1 : i % 2 });
    }
    expect((await api('POST', '/v1/feedback', { events })).status).toBe(200);
    expect(count('control')).toBeGreaterThan(1);
    expect(count('treatment')).toBeGreaterThan(1);
    const driven = JSON.stringify([['control', count('control'), count('control')], ['treatment', count('treatment'), count('treatment')]]);
    await until(async () => JSON.stringify(((await api('GET', '/v1/admin/experiments/cli-ab/results')).json as ResultsJson).variants.map((v) => [v.name, v.units, v.with_feedback])) === driven, 10_000);

    const results = (await run(['results', 'cli-ab'])).split('\n');
    expect(results[0]).toMatch(/^cli-ab on demo-logistic: running after \S+; hash assignment; alpha 0\.05$/);
    expect(results[1]).toBe(`variants: control=1 50% ${count('control')} units (control), treatment=2 50% ${count('treatment')} units`);
    const reward = results.indexOf('reward: primary metric, mean over units with feedback, increase is better; welch t test vs control');
    const converted = results.findIndex((l) => l.startsWith('converted: secondary metric, rate'));
    expect(reward).toBeGreaterThan(1);
    expect(converted).toBeGreaterThan(reward);
    expect(results[reward + 1]!.trim().split(/\s{2,}/)).toEqual(['variant', 'units', 'mean', 'diff', '95% CI', 'lift', 'lift CI', 'p fixed (Holm)', 'p seq (Holm)']);
    // The control's mean is its share of odd-numbered units; the treatment's is 1 with no variance.
    const controlUnits = [...variantOf].filter(([, v]) => v === 'control').map(([u]) => Number(u.slice(1)));
    const controlMean = controlUnits.filter((i) => i % 2 === 1).length / controlUnits.length;
    const control = results[reward + 2]!.trim().split(/\s{2,}/);
    expect(control.slice(0, 3)).toEqual(['control', String(count('control')), String(Number(controlMean.toPrecision(4)))]);
    expect(control.slice(3)).toEqual(['-', '-', '-', '-', '-', '-']);
    const treatment = results[reward + 3]!.trim().split(/\s{2,}/);
    expect(treatment.slice(0, 4)).toEqual(['treatment', String(count('treatment')), '1', String(Number((1 - controlMean).toPrecision(4)))]);
    expect(treatment[4]).toMatch(/^\[[-\d.e]+, [-\d.e]+\]$/);
    expect(treatment[5]).toBe(`+${Number(((1 - controlMean) / controlMean * 100).toPrecision(3))}%`);
    expect(results).toContainEqual(expect.stringMatching(/^SRM: chi2 [\d.e-]+ \(df 1\), p [\d.e-]+: (no mismatch|MISMATCH)/));
    expect(results).toContainEqual(expect.stringMatching(/^decision: continue: \S/));
    expect(JSON.parse(await run(['results', 'cli-ab', '--json']))).toMatchObject({ experiment: 'cli-ab', decision: { action: 'continue' } });

    expect((await run(['weights', 'cli-ab', 'control=3', 'treatment=1', '--reason', 'ramp down'])).trim())
      .toMatch(/^cli-ab: weights in force \(route generation \d+\): control 75%, treatment 25%$/);
    expect((await api('GET', '/v1/admin/audit?model=demo-logistic&limit=1')).json[0]).toMatchObject({ reason: 'ramp down' });

    // Every driven unit plus two the experiment never saw; a header line.
    const csv = ['unit_id,value', ...[...variantOf.keys()].map((u, i) => `${u},${i % 5}`), 'stranger-1,1', 'stranger-2,2'].join('\n');
    expect((await run(['covariates', 'cli-ab', '--file', file('units.csv', csv)])).trim())
      .toBe('cli-ab: 42 covariates received in 1 request, 40 stored, 2 for units the experiment has not seen');
    expect((await run(['results', 'cli-ab']))).toMatch(/^reward: .*, CUPED theta [-\d.e]+$/m);
    const fromStdin = await sluice(['experiments', 'covariates', 'cli-ab', '--file', '-', ...url], {}, '[{"unit_id": "u0", "value": 7}, {"unit_id": "nobody", "value": 1}]');
    expect([fromStdin.code, fromStdin.stdout.trim()]).toEqual([0, 'cli-ab: 2 covariates received in 1 request, 1 stored, 1 for units the experiment has not seen']);
    // Over 100,000: two requests, totals summed (the driven units again, last, so they are stored again).
    const many = [...Array.from({ length: 100_000 }, (_, i) => `far-${i},${i}`), ...[...variantOf.keys()].map((u, i) => `${u},${i % 3}`)].join('\n');
    expect((await run(['covariates', 'cli-ab', '--file', file('many.csv', many)])).trim())
      .toBe('cli-ab: 100,040 covariates received in 2 requests, 40 stored, 100,000 for units the experiment has not seen');

    expect((await run(['stop', 'cli-ab', '--reason', 'enough seen'])).trim()).toBe('cli-ab: stopped (manual: enough seen); demo-logistic serves its production version');
    expect(await run(['show', 'cli-ab'])).toMatch(/^outcome: manual: enough seen$/m);
    expect((await run(['promote', 'cli-ab', '--variant', 'treatment', '--reason', 'ship it'])).trim()).toBe('cli-ab: demo-logistic version 2 is production now (was 1)');
    expect(((await api('GET', '/v1/admin/models/demo-logistic')).json as { productionVersion: string }).productionVersion).toBe('2');
    expect((await run(['list', '--status', 'stopped'])).trim().split('\n')[1]).toMatch(/^cli-ab\s+demo-logistic\s+stopped\s+.*manual \(promoted 2\)$/);
  }, 30_000);

  it('fails with one line and exit code 1; faults in its own input send nothing', async () => {
    const before = JSON.stringify((await api('GET', '/v1/admin/experiments')).json);
    const generation = (await api('GET', '/v1/admin/models/demo-logistic/route')).json.generation;
    const cases: Array<[string[], string | RegExp]> = [
      [['create'], 'sluice: give the definition as --file def.json (or --file - for stdin) (INVALID_ARGUMENT)'],
      [['create', '--file', path.join(dir, 'missing.json')], /^sluice: cannot read .*missing\.json: ENOENT.* \(INVALID_ARGUMENT\)$/],
      [['create', '--file', file('broken.json', '{"name": ')], /^sluice: cannot read .*broken\.json as JSON: .* \(INVALID_ARGUMENT\)$/],
      [['create', '--file', file('one.json', JSON.stringify({ name: 'x', model: 'demo-logistic', variants: [{ name: 'a', version: '1', weight: 1 }], primary: { name: 'r', kind: 'mean' } }))],
        'sluice: variants must have a control and at least one treatment (2 or more entries) (EXPERIMENT_INVALID)'],
      [['list', '--status', 'paused'], 'sluice: --status "paused": write running or stopped (INVALID_ARGUMENT)'],
      [['weights', 'cli-ab', 'control:3'], 'sluice: weight "control:3": write variant=weight with a weight > 0, e.g. control=0.8 treatment=0.2 (INVALID_ARGUMENT)'],
      [['covariates', 'cli-ab'], 'sluice: give the covariates as --file units.csv (or --file - for stdin) (INVALID_ARGUMENT)'],
      [['covariates', 'cli-ab', '--file', file('bad.csv', 'unit_id,value\nu1,1\nu2,oops\n')], /^sluice: .*bad\.csv line 3: the value must be a finite number \(INVALID_ARGUMENT\)$/],
      [['show', 'nope'], 'sluice: no experiment is named nope (EXPERIMENT_NOT_FOUND)'],
      [['results', 'bad name!'], /^sluice: .* \(NAME_INVALID\)$/],
      [['promote', 'cli-ab', '--variant', 'treatment'], /^sluice: experiment cli-ab promoted version 2 already \(EXPERIMENT_STOPPED\)$/],
      [['weights', 'cli-ab', 'control=1', 'treatment=1'], /\(EXPERIMENT_STOPPED\)$/],
    ];
    for (const [args, line] of cases) {
      const r = await sluice(['experiments', ...args, ...url]);
      expect(r.code, args.join(' ')).toBe(1);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('sluice:'));
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0], args.join(' ')).toMatch(typeof line === 'string' ? new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : line);
    }
    const noKey = await sluice(['experiments', 'list', '--url', s.url]);
    expect([noKey.code, noKey.stderr.trim()]).toEqual([1, 'sluice: a valid API key is required (Authorization: Bearer <key>) (UNAUTHENTICATED)']);
    expect(JSON.stringify((await api('GET', '/v1/admin/experiments')).json)).toBe(before);
    expect((await api('GET', '/v1/admin/models/demo-logistic/route')).json.generation).toBe(generation);
  }, 30_000);
});
