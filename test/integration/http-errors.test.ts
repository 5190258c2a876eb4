import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { demoBody, getJson, postJson, rawRequest, type TestServer } from '../helpers/http.js';
import { writeFixture } from '../helpers/repo.js';
import { startRepoServer, until } from '../helpers/server.js';

const LIMIT = 256 * 1024;

describe('HTTP front end: every bad input gets its coded error, and the server keeps serving', () => {
  let s: TestServer;
  let infer: string;

  beforeAll(async () => {
    s = await startRepoServer({ workers: 1, allowFixtureModels: true, maxBodyBytes: LIMIT, maxJsonDepth: 16 }, async (root) => {
      // 200 ms per batch, one row per batch, a queue of one: easy to fill and to make wait.
      await writeFixture(root, 'slow', '1', { op: 'sum', delay_us: 200_000 }, { maxBatch: 1, queue: 1 });
      await writeFixture(root, 'faulty', '1', { op: 'sum', error_on: 13 });
    });
    infer = `${s.url}/v2/models/demo-logistic/infer`;
  });
  afterAll(() => s.close());
  afterEach(async () => {
    // After every bad request, a good one still gets its answer.
    // (Right after a burst, admission control may still refuse with 503 OVERLOADED: retry.)
    let ok = await postJson(infer, demoBody());
    for (let i = 0; i < 20 && ok.status === 503 && ok.json.code === 'OVERLOADED'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      ok = await postJson(infer, demoBody());
    }
    expect(ok.status).toBe(200);
    expect(ok.json.model_version).toBe('1');
  });

  const expectError = (r: { status: number; json: any }, status: number, code: string) => {
    expect(r.status, JSON.stringify(r.json)).toBe(status);
    expect(r.json).toEqual({ error: expect.any(String), code });
  };

  it('malformed JSON: 400 MALFORMED_REQUEST', async () => {
    expectError(await postJson(infer, '{"inputs": [1, 2'), 400, 'MALFORMED_REQUEST');
  });

  it('wrong content type: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    expectError(await postJson(infer, demoBody(), { 'content-type': 'text/csv' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('invalid UTF-8: 400 INVALID_UTF8', async () => {
    const body = Buffer.concat([Buffer.from('{"id": "'), Buffer.from([0xc3, 0x28]), Buffer.from('", "inputs": []}')]);
    const res = await fetch(infer, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expectError({ status: res.status, json: await res.json() }, 400, 'INVALID_UTF8');
  });

  it('body over the limit (Content-Length): 413 at once, without reading the body', async () => {
    // Announce 100 MB but send only a few bytes: the answer must come without waiting for the rest.
    const out = await rawRequest(s.port, [`POST /v2/models/demo-logistic/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n{"inputs":`], 3000);
    expect(out).toMatch(/^HTTP\/1\.1 413 /);
    expect(out).toContain('"code":"PAYLOAD_TOO_LARGE"');
  });

  it('body over the limit (chunked, no Content-Length): 413 once the limit is passed', async () => {
    const chunk = 'x'.repeat(64 * 1024);
    const hex = chunk.length.toString(16);
    const chunks = [`POST /v2/models/demo-logistic/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`];
    for (let i = 0; i < 6; i++) chunks.push(`${hex}\r\n${chunk}\r\n`);
    const out = await rawRequest(s.port, chunks, 3000);
    expect(out).toMatch(/^HTTP\/1\.1 413 /);
    expect(out).toContain('"code":"PAYLOAD_TOO_LARGE"');
  });

  it('declared shape whose element count does not match the data: 400 SHAPE_MISMATCH', async () => {
    expectError(await postJson(infer, { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: new Array(99).fill(1) }] }), 400, 'SHAPE_MISMATCH');
    expectError(await postJson(infer, { inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 100], data: new Array(100).fill(1) }] }), 400, 'SHAPE_MISMATCH');
  });

  it('binary data whose byte size does not match the shape: 400 SHAPE_MISMATCH', async () => {
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], parameters: { binary_data_size: 396 } }] }));
    const res = await fetch(infer, { method: 'POST', headers: { 'inference-header-content-length': String(header.byteLength) }, body: Buffer.concat([header, Buffer.alloc(396)]) });
    expectError({ status: res.status, json: await res.json() }, 400, 'SHAPE_MISMATCH');
  });

  it('a shape that does not fit the signature: 400 SHAPE_MISMATCH', async () => {
    expectError(await postJson(infer, { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 99], data: new Array(99).fill(1) }] }), 400, 'SHAPE_MISMATCH');
  });

  it('wrong datatype: 400 DATATYPE_MISMATCH', async () => {
    expectError(await postJson(infer, { inputs: [{ name: 'features', datatype: 'FP64', shape: [1, 100], data: new Array(100).fill(1) }] }), 400, 'DATATYPE_MISMATCH');
    expectError(await postJson(infer, { inputs: [{ name: 'features', datatype: 'FLOAT', shape: [1, 100], data: new Array(100).fill(1) }] }), 400, 'DATATYPE_MISMATCH');
  });

  const withValue = (v: string) => `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,100],"data":[${v}${',1'.repeat(99)}]}]}`;

  it('NaN and Infinity (not JSON numbers): 400', async () => {
    expectError(await postJson(infer, withValue('NaN')), 400, 'MALFORMED_REQUEST');
    expectError(await postJson(infer, withValue('Infinity')), 400, 'MALFORMED_REQUEST');
    expectError(await postJson(infer, withValue('"NaN"')), 400, 'INVALID_TENSOR_VALUE');
  });

  it('1e400 (parses to Infinity): 400 INVALID_TENSOR_VALUE', async () => {
    expectError(await postJson(infer, withValue('1e400')), 400, 'INVALID_TENSOR_VALUE');
  });

  it('a value out of the float32 range: 400 INVALID_TENSOR_VALUE', async () => {
    expectError(await postJson(infer, withValue('3.5e38')), 400, 'INVALID_TENSOR_VALUE');
    expectError(await postJson(infer, withValue('-1e39')), 400, 'INVALID_TENSOR_VALUE');
  });

  it('JSON nested deeper than the limit: 400 JSON_TOO_DEEP', async () => {
    expectError(await postJson(infer, `{"inputs": ${'['.repeat(100)}${']'.repeat(100)}}`), 400, 'JSON_TOO_DEEP');
    expectError(await postJson(infer, '['.repeat(200000)), 400, 'JSON_TOO_DEEP');
  });

  it('__proto__ and constructor keys change nothing', async () => {
    const body = `{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 2}}, "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 100], "data": [${new Array(100).fill(0).join(',')}], "__proto__": {"shape": [1]}}]}`;
    const r = await postJson(infer, body);
    expect(r.status).toBe(200);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    const bad = await postJson(infer, '{"__proto__": {"inputs": [1]}}');
    expectError(bad, 400, 'INVALID_ARGUMENT');
  });

  it('unknown model: 404 MODEL_NOT_FOUND, without listing other models', async () => {
    const r = await postJson(`${s.url}/v2/models/nope/infer`, demoBody());
    expectError(r, 404, 'MODEL_NOT_FOUND');
    expect(r.json.error).not.toMatch(/demo-/);
    expectError(await getJson(`${s.url}/v2/models/nope`), 404, 'MODEL_NOT_FOUND');
  });

  it('unknown version: 404 VERSION_NOT_FOUND', async () => {
    expectError(await postJson(`${s.url}/v2/models/demo-logistic/versions/7/infer`, demoBody()), 404, 'VERSION_NOT_FOUND');
  });

  it('missing or unknown inputs, too many rows, unknown outputs: 400 with their codes', async () => {
    expectError(await postJson(infer, { inputs: [{ name: 'other', datatype: 'FP32', shape: [1, 1], data: [1] }] }), 400, 'INPUT_MISSING');
    expectError(await postJson(infer, { inputs: [...(demoBody().inputs as object[]), { name: 'extra', datatype: 'FP32', shape: [1, 1], data: [1] }] }), 400, 'INPUT_UNKNOWN');
    expectError(await postJson(infer, demoBody(1025, 0)), 400, 'BATCH_TOO_LARGE');
    expectError(await postJson(infer, demoBody(1, 0.1, { outputs: [{ name: 'logits' }] })), 400, 'OUTPUT_UNKNOWN');
  });

  const slowBody = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }] };

  it('expired deadline (timeout parameter or Timeout-Ms header): 504 DEADLINE_EXCEEDED', async () => {
    const slow = `${s.url}/v2/models/slow/infer`;
    const busy = [postJson(slow, slowBody), postJson(slow, slowBody)];
    // Both in the engine first (a fixed sleep was not always enough on a loaded machine).
    await until(() => s.engine.inFlight >= 2);
    // Both worker slots are busy for 200 ms: these expire in the queue and are dropped.
    expectError(await postJson(slow, { ...slowBody, parameters: { timeout: 30_000 } }), 504, 'DEADLINE_EXCEEDED');
    await Promise.all(busy);
    const busy2 = [postJson(slow, slowBody), postJson(slow, slowBody)];
    await until(() => s.engine.inFlight >= 2);
    expectError(await postJson(slow, slowBody, { 'timeout-ms': '30' }), 504, 'DEADLINE_EXCEEDED');
    await Promise.all(busy2);
  });

  it('queue full: 503 OVERLOADED with Retry-After', async () => {
    const slow = `${s.url}/v2/models/slow/infer`;
    // 2 in flight (1 worker x 2 slots) + 1 queued fill it; the next one is refused.
    const busy = [postJson(slow, slowBody), postJson(slow, slowBody), postJson(slow, slowBody)];
    await until(() => s.engine.inFlight >= 3);
    const r = await postJson(slow, slowBody);
    expectError(r, 503, 'OVERLOADED');
    expect(r.headers.get('retry-after')).toBe('1');
    await Promise.all(busy);
  });

  it('model error: 500 MODEL_ERROR with a sanitised message', async () => {
    const r = await postJson(`${s.url}/v2/models/faulty/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [13, 0, 0, 0] }] });
    expectError(r, 500, 'MODEL_ERROR');
    expect(r.json.error).not.toContain('/internal/path');
  });

  it('a storm of bad requests mixed with good ones: every good one answered correctly', async () => {
    const bad = ['{', withValue('1e400'), '['.repeat(5000), JSON.stringify(demoBody(2000))];
    const results = await Promise.all(Array.from({ length: 400 }, (_, i) =>
      i % 4 === 0 ? postJson(infer, demoBody(1, 0.2)) : postJson(infer, bad[i % bad.length]!)));
    // 400 requests at once on a server sharing its event loop with this client is a burst the
    // admission control may shed part of (503 OVERLOADED, retryable): a coded refusal, never a
    // wrong or missing answer. How much it sheds depends on how loaded the machine is (13 of 100
    // good ones answered in one CI run beside other test files): what must hold is that some
    // are answered during the storm and every one after it.
    let answered = 0;
    results.forEach((r, i) => {
      if (i % 4 === 0) {
        if (r.status === 503) expect(r.json.code).toBe('OVERLOADED');
        else {
          expect(r.status).toBe(200);
          answered++;
        }
      } else expect(r.status).toBeGreaterThanOrEqual(400);
    });
    expect(answered).toBeGreaterThan(0);
    // After the storm the server serves as before (a retry once the admission control's
    // interval has passed, as Retry-After says).
    for (let i = 0; i < 20; i++) {
      let r = await postJson(infer, demoBody(1, 0.2));
      if (r.status === 503 && r.json.code === 'OVERLOADED') {
        await new Promise((res) => setTimeout(res, 100));
        r = await postJson(infer, demoBody(1, 0.2));
      }
      expect(r.status).toBe(200);
    }
  });
});
