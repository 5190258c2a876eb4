/**
 * The one naming rule (src/names.ts) on every route and transport that takes a name: a name that
 * breaks it (NUL, space, slash, too long) is 400 / INVALID_ARGUMENT NAME_INVALID, never a 500
 * (PostgreSQL refuses NUL in text with error 22021) and never reaches SQL or a path; a
 * well-formed unknown name stays 404. Against the embedded registry and real PostgreSQL.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { call, inferenceClient, type InferenceClient } from '../helpers/grpc.js';
import { demoBody, postJson } from '../helpers/http.js';
import { admin, logisticVersion, registerBody, startFull, type FullServer } from '../helpers/server.js';
import { createPgDatabase, describeWith, postgresService } from '../helpers/services.js';
import { f32Frame, openStream } from '../helpers/ws.js';

/** Names that break the rule, as they travel raw and URL-encoded in a path segment. */
const BAD = ['a\u0000b', 'a b', '../etc', 'x'.repeat(129), '-leading'];
const seg = encodeURIComponent;

function suite(label: string, config: () => Promise<{ overrides: Record<string, unknown>; cleanup: () => Promise<void> }>) {
  describe(`names (${label})`, () => {
    let s: FullServer;
    let cleanup: () => Promise<void>;
    let client: InferenceClient;

    beforeAll(async () => {
      const c = await config();
      cleanup = c.cleanup;
      s = await startFull(c.overrides);
      client = inferenceClient(`127.0.0.1:${s.grpcPort}`);
    });
    afterAll(async () => {
      client?.close();
      await s?.close();
      await cleanup?.();
    });

    const expectInvalid = (r: { status: number; json: any }, what: string) => {
      expect(r.status, `${what}: ${JSON.stringify(r.json)}`).toBe(400);
      expect(r.json.code, what).toBe('NAME_INVALID');
    };

    it('HTTP admin API: 400 NAME_INVALID for every bad model name or version (the NUL byte was a 500)', async () => {
      const k = s.adminKey;
      for (const bad of BAD) {
        expectInvalid(await admin(s, k, 'GET', `/v1/admin/models/${seg(bad)}`), `show ${JSON.stringify(bad)}`);
        expectInvalid(await admin(s, k, 'GET', `/v1/admin/models/${seg(bad)}/versions`), 'versions');
        expectInvalid(await admin(s, k, 'GET', `/v1/admin/models/demo-logistic/versions/${seg(bad)}`), 'get version');
        expectInvalid(await admin(s, k, 'POST', `/v1/admin/models/${seg(bad)}/promote`, { version: '1' }), 'promote model');
        expectInvalid(await admin(s, k, 'POST', '/v1/admin/models/demo-logistic/promote', { version: bad }), 'promote version');
        expectInvalid(await admin(s, k, 'POST', `/v1/admin/models/${seg(bad)}/rollback`, {}), 'rollback model');
        expectInvalid(await admin(s, k, 'POST', '/v1/admin/models/demo-logistic/rollback', { to: bad }), 'rollback to');
        expectInvalid(await admin(s, k, 'GET', `/v1/admin/audit?model=${seg(bad)}`), 'audit');
        expectInvalid(await admin(s, k, 'POST', '/v1/admin/keys', { name: bad, scopes: ['predict'] }), 'key name');
        const { manifest, payload } = logisticVersion(1);
        const reg = registerBody({ manifest: { ...manifest, name: undefined }, version: '1' }, payload);
        expectInvalid(await admin(s, k, 'POST', `/v1/admin/models/${seg(bad)}/versions`, reg.body, reg.headers), 'register model');
        const reg2 = registerBody({ manifest, version: bad }, payload);
        expectInvalid(await admin(s, k, 'POST', '/v1/admin/models/demo-logistic/versions', reg2.body, reg2.headers), 'register version');
      }
      // Well-formed but unknown: still 404.
      expect((await admin(s, k, 'GET', '/v1/admin/models/no-such-model')).json.code).toBe('MODEL_NOT_FOUND');
      expect((await admin(s, k, 'GET', '/v1/admin/models/demo-logistic/versions/9.9.9')).json.code).toBe('VERSION_NOT_FOUND');
      // The server is fine afterwards.
      expect((await postJson(`${s.url}/v2/models/demo-logistic/infer`, demoBody())).status).toBe(200);
    });

    it('HTTP v2 and v1: 400 NAME_INVALID for bad names, 404 for unknown ones', async () => {
      for (const bad of BAD) {
        const m = seg(bad);
        const get = async (p: string) => {
          const r = await fetch(`${s.url}${p}`);
          return { status: r.status, json: await r.json() };
        };
        expectInvalid(await get(`/v2/models/${m}`), 'metadata');
        expectInvalid(await get(`/v2/models/demo-logistic/versions/${m}`), 'version metadata');
        expectInvalid(await get(`/v2/models/${m}/ready`), 'model ready');
        expectInvalid(await get(`/v2/models/${m}/config`), 'config');
        expectInvalid(await get(`/v2/models/${m}/stats`), 'stats');
        expectInvalid(await postJson(`${s.url}/v2/models/${m}/infer`, demoBody()), 'infer');
        expectInvalid(await postJson(`${s.url}/v2/models/demo-logistic/versions/${m}/infer`, demoBody()), 'version infer');
        expectInvalid(await postJson(`${s.url}/v2/repository/models/${m}/load`, {}, { authorization: `Bearer ${s.adminKey}` }), 'load');
        expectInvalid(await postJson(`${s.url}/v2/repository/models/${m}/unload`, {}, { authorization: `Bearer ${s.adminKey}` }), 'unload');
        expectInvalid(await postJson(`${s.url}/v1/models/${m}:predict`, { instances: [new Array(100).fill(0.1)] }), 'v1 predict');
      }
      expect((await postJson(`${s.url}/v2/models/no-such-model/infer`, demoBody())).status).toBe(404);
      expect((await postJson(`${s.url}/v2/repository/models/no-such-model/load`, {}, { authorization: `Bearer ${s.adminKey}` })).status).toBe(404);
    });

    it('gRPC: INVALID_ARGUMENT NAME_INVALID for bad names, NOT_FOUND for unknown ones', async () => {
      const expectCode = async (p: Promise<unknown>, status: number, code: string) => {
        const e = await p.then(() => undefined, (x: grpc.ServiceError) => x);
        expect(e?.code).toBe(status);
        expect(e?.metadata.get('sluice-code')).toEqual([code]);
      };
      const x = new Float32Array(100).fill(0.1);
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${s.adminKey}`);
      for (const bad of BAD) {
        const req = { model_name: bad, inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], contents: { fp32_contents: [...x] } }] };
        await expectCode(call(client, 'ModelInfer', req), grpc.status.INVALID_ARGUMENT, 'NAME_INVALID');
        await expectCode(call(client, 'ModelMetadata', { name: bad }), grpc.status.INVALID_ARGUMENT, 'NAME_INVALID');
        await expectCode(call(client, 'ModelReady', { name: bad }), grpc.status.INVALID_ARGUMENT, 'NAME_INVALID');
        await expectCode(call(client, 'RepositoryModelLoad', { model_name: bad }, {}, md), grpc.status.INVALID_ARGUMENT, 'NAME_INVALID');
      }
      await expectCode(call(client, 'RepositoryModelLoad', { model_name: 'no-such-model' }, {}, md), grpc.status.NOT_FOUND, 'MODEL_NOT_FOUND');
    });

    it('WebSocket stream: a bad name is answered NAME_INVALID and the stream goes on', async () => {
      const st = await openStream(s.url);
      try {
        const x = new Float32Array(100).fill(0.1);
        BAD.forEach((bad, i) => st.ws.send(f32Frame(i, bad, x, 1)));
        st.ws.send(f32Frame('ok', 'demo-logistic', x, 1));
        const answers = await st.next(BAD.length + 1);
        for (let i = 0; i < BAD.length; i++) expect(answers.find((a) => a.id === i)?.code).toBe('NAME_INVALID');
        expect(answers.find((a) => a.id === 'ok')?.outputs).toHaveLength(1);
      } finally {
        st.ws.close();
      }
    });
  });
}

suite('embedded PGlite', async () => ({ overrides: {}, cleanup: async () => undefined }));

describeWith(postgresService, 'PostgreSQL', () => {
  suite('PostgreSQL', async () => {
    const db = await createPgDatabase();
    return { overrides: { databaseUrl: db.url }, cleanup: db.drop };
  });
});

describe('names on the command line', () => {
  it('a bad model name fails at once with NAME_INVALID, exit 1, without contacting a server', async () => {
    const cli = path.join(projectRoot, 'dist/src/cli/index.js');
    const r = await promisify(execFile)(process.execPath, [cli, 'models', 'show', 'a b', '--url', 'http://127.0.0.1:9'], { env: { ...process.env, SLUICE_LOG_LEVEL: 'silent' } })
      .then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sluice: model name must be .* \(NAME_INVALID\)$/m);
  });
});
