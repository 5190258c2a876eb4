/**
 * `sluice route show|set|clear` (src/cli/routes.ts) and `sluice shadow report` (src/cli/shadow.ts)
 * against a real server, through the built CLI.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseShadowOption, parseVariantOption } from '../../src/cli/routes.js';
import { sluice } from '../helpers/cli.js';
import { admin, logisticVersion, registerBody, startFull, until, type FullServer } from '../helpers/server.js';

describe('option parsing', () => {
  it('reads name=version:weight and version:fraction, refusing other shapes', () => {
    expect(parseVariantOption('a=1.0.0+build.5:0.9')).toEqual({ name: 'a', version: '1.0.0+build.5', weight: 0.9 });
    expect(parseShadowOption('3.0.0:0.5')).toEqual({ version: '3.0.0', fraction: 0.5 });
    for (const bad of ['a=1', 'a:1:2', '=1:2', 'a=1:', 'a=b=1:2']) expect(() => parseVariantOption(bad), bad).toThrow(/--variant .*name=version:weight/);
    for (const bad of ['3', ':0.5', '3:', '3:0.5:1']) expect(() => parseShadowOption(bad), bad).toThrow(/--shadow .*version:fraction/);
  });
});

describe('sluice route (against a whole server)', () => {
  let s: FullServer;
  let dir: string;
  let url: string[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-cli-route-'));
    s = await startFull();
    url = ['--url', s.url, '--key', s.adminKey];
    for (const v of ['2', '3']) {
      const lv = logisticVersion(Number(v));
      const reg = registerBody({ manifest: lv.manifest, version: v }, lv.payload);
      expect((await admin(s, s.adminKey, 'POST', '/v1/admin/models/demo-logistic/versions', reg.body, reg.headers)).status).toBe(200);
    }
  });
  afterAll(async () => {
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('show, set from options, set from a file, clear: a round trip through the admin API', async () => {
    const none = await sluice(['route', 'show', 'demo-logistic', ...url]);
    expect(none.code, none.stderr).toBe(0);
    expect(JSON.parse(none.stdout)).toEqual({ model: 'demo-logistic', route: null });

    const set = await sluice(['route', 'set', 'demo-logistic', '--variant', 'a=1:0.9', '--variant', 'b=2:0.1', '--shadow', '3:0.5', '--log-features', '--reason', 'canary', ...url]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout.trim()).toBe('demo-logistic: route in force (generation 1): a=1 90%, b=2 10%; hash of salt "demo-logistic" + unit id; shadows 3 50%; features logged');
    const shown = JSON.parse((await sluice(['route', 'show', 'demo-logistic', ...url])).stdout);
    expect(shown).toMatchObject({
      model: 'demo-logistic', generation: 1, updated_by: 'admin',
      route: { variants: [{ name: 'a', version: '1', weight: 0.9 }, { name: 'b', version: '2', weight: 0.1 }], assignment: 'hash', salt: 'demo-logistic', shadows: [{ version: '3', fraction: 0.5 }], log_features: true },
    });
    expect((await s.registry.registry.audit({ model: 'demo-logistic', limit: 1 }))[0]).toMatchObject({ action: 'route_set', actor: 'admin', reason: 'canary' });

    // The `route` of `show` is a valid --file.
    const file = path.join(dir, 'route.json');
    writeFileSync(file, JSON.stringify({ ...shown.route, assignment: 'random', salt: 'exp-2' }));
    const fromFile = await sluice(['route', 'set', 'demo-logistic', '--file', file, ...url]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toMatch(/^demo-logistic: route in force \(generation 2\): a=1 90%, b=2 10%; random per request; shadows 3 50%; features logged$/m);
    const again = await sluice(['route', 'set', 'demo-logistic', '--file', file, ...url]);
    expect(again.stdout).toMatch(/^demo-logistic: route unchanged \(generation 2\)/);

    const clear = await sluice(['route', 'clear', 'demo-logistic', '--reason', 'done', ...url]);
    expect(clear.code, clear.stderr).toBe(0);
    expect(clear.stdout.trim()).toBe('demo-logistic: route cleared (generation 3); serving its production version');
    expect(JSON.parse((await sluice(['route', 'show', 'demo-logistic', ...url])).stdout)).toEqual({ model: 'demo-logistic', route: null });
    expect((await sluice(['route', 'clear', 'demo-logistic', ...url])).stdout.trim()).toBe('demo-logistic: had no route; serving its production version');
    expect((await s.registry.registry.audit({ model: 'demo-logistic', limit: 1 }))[0]).toMatchObject({ action: 'route_clear', actor: 'admin', reason: 'done' });
  });

  it('owners: --owner sets one (shown by show), a manual set or clear of an experiment\'s route fails with ROUTE_OWNED, --force overrides it', async () => {
    const exp = await sluice(['route', 'set', 'demo-logistic', '--variant', 'a=1:1', '--owner', 'experiment', ...url]);
    expect(exp.code, exp.stderr).toBe(0);
    expect(exp.stdout.trim()).toMatch(/^demo-logistic: route in force \(generation \d+, owner experiment\): a=1 100%/);
    expect(JSON.parse((await sluice(['route', 'show', 'demo-logistic', ...url])).stdout)).toMatchObject({ owner: 'experiment', route: { variants: [{ name: 'a' }] } });

    const bad = await sluice(['route', 'set', 'demo-logistic', '--variant', 'a=1:1', '--owner', 'robot', ...url]);
    expect([bad.code, bad.stderr.trim()]).toEqual([1, 'sluice: owner must be one of "manual", "experiment", "deployment" (ROUTE_INVALID)']);
    const refused = await sluice(['route', 'set', 'demo-logistic', '--variant', 'b=2:1', ...url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^sluice: the route of demo-logistic belongs to an experiment \(generation \d+\); a manual change over it needs "force": true \(ROUTE_OWNED\)$/m);
    expect((await sluice(['route', 'clear', 'demo-logistic', ...url])).stderr).toMatch(/\(ROUTE_OWNED\)$/m);

    const forced = await sluice(['route', 'set', 'demo-logistic', '--variant', 'b=2:1', '--force', '--reason', 'take over', ...url]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout.trim()).toMatch(/^demo-logistic: route in force \(generation \d+, replacing a route of experiment\): b=2 100%/);
    expect((await s.registry.registry.audit({ model: 'demo-logistic', limit: 1 }))[0]).toMatchObject({ action: 'route_set', reason: 'take over', routeOwner: 'manual', forcedOver: 'experiment' });

    await sluice(['route', 'set', 'demo-logistic', '--variant', 'a=1:1', '--owner', 'deployment', ...url]);
    const cleared = await sluice(['route', 'clear', 'demo-logistic', '--force', ...url]);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(cleared.stdout.trim()).toMatch(/^demo-logistic: route cleared \(a route of deployment, forced\) \(generation \d+\); serving its production version$/);
    expect(JSON.parse((await sluice(['route', 'show', 'demo-logistic', ...url])).stdout)).toEqual({ model: 'demo-logistic', route: null });
  });

  it('fails with one line and exit code 1: bad options, an invalid route (checked before sending), an unknown version, no key', async () => {
    const cases: Array<[string[], string]> = [
      [['route', 'set', 'demo-logistic', '--variant', 'a=1', ...url], 'sluice: --variant "a=1": write name=version:weight, e.g. a=1.0.0:0.9 (INVALID_ARGUMENT)'],
      [['route', 'set', 'demo-logistic', ...url], 'sluice: give the route as --variant name=version:weight (one or more) or --file route.json (INVALID_ARGUMENT)'],
      [['route', 'set', 'demo-logistic', '--variant', 'a=1:0', ...url], 'sluice: variants[0].weight must be a finite number > 0 (ROUTE_INVALID)'],
      [['route', 'set', 'demo-logistic', '--variant', 'a=1:1', '--assignment', 'sticky', ...url], 'sluice: assignment must be "hash" (sticky per unit id), "random" (per request) or "bandit" (Thompson sampling on the variants\' rewards) (ROUTE_INVALID)'],
      [['route', 'set', 'demo-logistic', '--variant', 'a=1:1', '--shadow', '3:1.5', ...url], 'sluice: shadows[0].fraction must be a finite number > 0 and <= 1 (ROUTE_INVALID)'],
      [['route', 'set', 'demo-logistic', '--variant', 'a=1:1', '--file', 'x.json', ...url], 'sluice: --file holds the whole route: give it without --variant, --assignment, --salt, --shadow or --log-features (INVALID_ARGUMENT)'],
      [['route', 'set', 'demo-logistic', '--variant', 'a=7.7:1', ...url], 'sluice: model demo-logistic has no registered version 7.7 (VERSION_NOT_FOUND)'],
      [['route', 'show', 'no-such', ...url], 'sluice: model no-such is not registered (MODEL_NOT_FOUND)'],
      [['route', 'show', 'demo-logistic', '--url', s.url], 'sluice: a valid API key is required (Authorization: Bearer <key>) (UNAUTHENTICATED)'],
    ];
    for (const [args, line] of cases) {
      const r = await sluice(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('sluice:')), args.join(' ')).toEqual([line]);
    }
    expect(JSON.parse((await sluice(['route', 'show', 'demo-logistic', ...url])).stdout).route).toBeNull();
  });

  it('shadow report: the admin API\'s figures as a table, one row per shadow version, and --json as the server answers', async () => {
    const none = await sluice(['shadow', 'report', 'demo-logistic', ...url]);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout.trim()).toBe('demo-logistic: no shadow traffic recorded (no route in force)');

    // Version 4 has version 1's weights (it agrees); version 3 has three times them (it does not).
    const lv = logisticVersion(1);
    const reg = registerBody({ manifest: lv.manifest, version: '4' }, lv.payload);
    expect((await admin(s, s.adminKey, 'POST', '/v1/admin/models/demo-logistic/versions', reg.body, reg.headers)).status).toBe(200);
    const set = await sluice(['route', 'set', 'demo-logistic', '--variant', 'a=1:1', '--shadow', '3:1', '--shadow', '4:1', ...url]);
    expect(set.code, set.stderr).toBe(0);
    const N = 30;
    const features = Array.from({ length: 100 }, (_, i) => (i % 5) / 10);
    for (let i = 0; i < N; i++) {
      const r = await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: features }] }) });
      expect(((await r.json()) as any).model_version).toBe('1');
    }
    // Shadows run after the answers: wait until the server has counted them all (one at a time, none dropped).
    const report = async () => (await admin(s, s.adminKey, 'GET', '/v1/admin/models/demo-logistic/shadow')).json;
    await until(async () => (await report()).shadows.every((x: any) => x.mirrored + x.errors === N && x.compared === N));
    const json = await report();

    const out = await sluice(['shadow', 'report', 'demo-logistic', ...url]);
    expect(out.code, out.stderr).toBe(0);
    const [head, columns, ...rows] = out.stdout.trimEnd().split('\n');
    expect(head).toBe(`demo-logistic: shadow versions (route generation ${json.route_generation}; agreeing: every output element within 0.000001 of the caller's; latency on the mirrored requests)`);
    expect(columns!.trim().split(/\s{2,}/)).toEqual(['version', 'mirrored', 'dropped', 'errors', 'compared', 'agreeing', 'mean |diff|', 'max |diff|', 'shadow p50 ms', 'shadow p99 ms', 'caller p50 ms', 'caller p99 ms']);
    const cells = rows.map((r) => r.trim().split(/\s+/));
    expect(cells.map((c) => c.slice(0, 6))).toEqual([['3', String(N), '0', '0', String(N), '0'], ['4', String(N), '0', '0', String(N), String(N)]]);
    const three = json.shadows.find((x: any) => x.version === '3');
    expect(three.mean_abs_diff).toBeGreaterThan(0);
    expect(cells[0]!.slice(6, 8)).toEqual([three.mean_abs_diff, three.max_abs_diff].map((x: number) => String(Number(x.toPrecision(3)))));
    expect(cells[1]!.slice(6, 8)).toEqual(['0', '0']);
    for (const [c, sh] of [[cells[0]!, three], [cells[1]!, json.shadows.find((x: any) => x.version === '4')]] as const) {
      const l = sh.latency_ms;
      expect(c.slice(8), c[0]).toEqual([l.shadow.p50, l.shadow.p99, l.caller.p50, l.caller.p99].map((x: number) => String(Number(x.toPrecision(3)))));
    }

    const raw = await sluice(['shadow', 'report', 'demo-logistic', '--json', ...url]);
    expect(raw.code, raw.stderr).toBe(0);
    expect(JSON.parse(raw.stdout)).toEqual(json); // no traffic since: the same figures

    const cases: Array<[string[], string]> = [
      [['shadow', 'report', 'no-such', ...url], 'sluice: model no-such is not loaded (MODEL_NOT_FOUND)'],
      [['shadow', 'report', 'bad name', ...url], 'sluice: model name must be 1-128 characters of A-Z a-z 0-9 . _ - + @, starting with a letter or digit (NAME_INVALID)'],
      [['shadow', 'report', 'demo-logistic', '--url', s.url], 'sluice: a valid API key is required (Authorization: Bearer <key>) (UNAUTHENTICATED)'],
      [['shadow', 'report', 'demo-logistic', '--url', 'http://127.0.0.1:1', '--key', 'k'], 'sluice: cannot reach http://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1 (REGISTRY_UNAVAILABLE)'],
    ];
    for (const [args, line] of cases) {
      const r = await sluice(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('sluice:')), args.join(' ')).toEqual([line]);
    }
    expect((await sluice(['route', 'clear', 'demo-logistic', ...url])).code).toBe(0);
  });
});
