import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryBody, demoBody, getJson, postJson, type TestServer } from '../helpers/http.js';
import { demoWeights, logistic, writeLinear } from '../helpers/repo.js';
import { startRepoServer } from '../helpers/server.js';

const w = demoWeights();

describe('HTTP front end: every route', () => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startRepoServer({ workers: 1, startupModels: ['demo-logistic', 'demo-onnx'] }, async (root) => {
      // A second version of demo-logistic (weights doubled) to load through the repository API.
      await writeLinear(root, 'demo-logistic', '2', { scale: 2 });
    });
    // Start-up loads the latest version; serve version 1 to begin with.
    await s.engine.load('demo-logistic', { version: '1' });
  });
  afterAll(() => s.close());

  it('GET /v2 describes the server and its extensions', async () => {
    expect(await getJson(`${s.url}/v2`)).toEqual({
      status: 200,
      json: { name: 'sluice', version: 'test', extensions: ['binary_tensor_data', 'model_repository', 'model_configuration', 'statistics'] },
    });
  });

  it('GET /v2/health/live and /v2/health/ready', async () => {
    expect(await getJson(`${s.url}/v2/health/live`)).toEqual({ status: 200, json: { live: true } });
    expect(await getJson(`${s.url}/v2/health/ready`)).toEqual({ status: 200, json: { ready: true } });
  });

  it('GET /v2/models/{m} and /versions/{v}: metadata', async () => {
    const meta = {
      name: 'demo-logistic',
      versions: ['1'],
      platform: 'sluice_logistic',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 100] }],
      outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
    };
    expect(await getJson(`${s.url}/v2/models/demo-logistic`)).toEqual({ status: 200, json: meta });
    expect(await getJson(`${s.url}/v2/models/demo-logistic/versions/1`)).toEqual({ status: 200, json: meta });
  });

  it('GET .../ready for the model and a version', async () => {
    expect(await getJson(`${s.url}/v2/models/demo-onnx/ready`)).toEqual({ status: 200, json: { name: 'demo-onnx', version: '1', ready: true } });
    expect((await getJson(`${s.url}/v2/models/demo-onnx/versions/1/ready`)).status).toBe(200);
  });

  it('GET /v2/models/{m}/config in Triton form (max_batch_size, dynamic_batching)', async () => {
    const { status, json } = await getJson(`${s.url}/v2/models/demo-onnx/config`);
    expect(status).toBe(200);
    expect(json).toMatchObject({
      name: 'demo-onnx',
      platform: 'onnxruntime_onnx',
      max_batch_size: 1024,
      input: [{ name: 'features', data_type: 'TYPE_FP32', dims: [100] }],
      output: [{ name: 'probability', data_type: 'TYPE_FP32', dims: [1] }],
      dynamic_batching: { max_queue_delay_microseconds: 0, default_queue_policy: { max_queue_size: 4096 } },
    });
    expect((await getJson(`${s.url}/v2/models/demo-onnx/versions/1/config`)).status).toBe(200);
  });

  it('POST infer with flat and nested JSON data, id echoed, named version, output selection', async () => {
    const rows = [new Array(100).fill(0.1), new Array(100).fill(-0.2)];
    const flat = await postJson(`${s.url}/v2/models/demo-logistic/infer`, { id: 'r-1', inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 100], data: rows.flat() }] });
    const nested = await postJson(`${s.url}/v2/models/demo-logistic/versions/1/infer`, {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 100], data: rows }],
      outputs: [{ name: 'probability' }],
    });
    expect(flat.status).toBe(200);
    expect(flat.json).toMatchObject({ model_name: 'demo-logistic', model_version: '1', id: 'r-1', outputs: [{ name: 'probability', datatype: 'FP32', shape: [2, 1] }] });
    expect(nested.json.outputs).toEqual(flat.json.outputs);
    rows.forEach((r, i) => expect(flat.json.outputs[0].data[i]).toBeCloseTo(logistic(r, w, 0.25), 6));
  });

  it('POST infer with the binary tensor extension, in and out', async () => {
    const x = new Float32Array(3 * 100).map((_, i) => ((i % 11) - 5) / 10);
    const { body, headerLength } = binaryBody({
      inputs: [{ name: 'features', datatype: 'FP32', shape: [3, 100], parameters: { binary_data_size: x.byteLength } }],
      outputs: [{ name: 'probability', parameters: { binary_data: true } }],
    }, [new Uint8Array(x.buffer)]);
    const res = await fetch(`${s.url}/v2/models/demo-logistic/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) },
      body,
    });
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const jsonLength = Number(res.headers.get('inference-header-content-length'));
    const header = JSON.parse(Buffer.from(bytes.subarray(0, jsonLength)).toString());
    expect(header).toMatchObject({ model_version: '1', outputs: [{ name: 'probability', shape: [3, 1], parameters: { binary_data_size: 12 } }] });
    const out = new Float32Array(bytes.slice(jsonLength).buffer);
    for (let r = 0; r < 3; r++) expect(out[r]).toBeCloseTo(logistic(x.subarray(r * 100, (r + 1) * 100), w, 0.25), 6);
    // binary_data_output returns every output in binary form too.
    const second = binaryBody({
      inputs: [{ name: 'features', datatype: 'FP32', shape: [3, 100], parameters: { binary_data_size: x.byteLength } }],
      parameters: { binary_data_output: true },
    }, [new Uint8Array(x.buffer)]);
    // No Content-Type at all, as tritonclient sends it.
    const all = await fetch(`${s.url}/v2/models/demo-onnx/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': String(second.headerLength) },
      body: second.body,
    });
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toBe('application/octet-stream');
  });

  it('binary requests of 1,024 rows in flight together each get their own answer (pooled bodies are reused only once answered)', async () => {
    // 400 kB bodies are read into reused buffers; a buffer given back too early would let one
    // request's rows be overwritten by another's. demo-onnx runs in the worker pool, so many
    // requests wait in the engine at once; demo-logistic runs inline.
    const rows = 1024;
    const infer = async (model: string, seed: number) => {
      const x = new Float32Array(rows * 100).map((_, i) => Math.fround(Math.sin(seed * 7919 + i) / 2));
      const { body, headerLength } = binaryBody({
        inputs: [{ name: 'features', datatype: 'FP32', shape: [rows, 100], parameters: { binary_data_size: x.byteLength } }],
        parameters: { binary_data_output: true },
      }, [new Uint8Array(x.buffer)]);
      const res = await fetch(`${s.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(headerLength) }, body });
      expect(res.status).toBe(200);
      const bytes = new Uint8Array(await res.arrayBuffer());
      const out = new Float32Array(bytes.slice(Number(res.headers.get('inference-header-content-length'))).buffer);
      return { x, out };
    };
    // demo-onnx is another network: its answers are checked against demo-onnx itself, one
    // request at a time, then in flight together.
    const alone = new Map<number, Float32Array>();
    for (let k = 0; k < 8; k++) alone.set(k, (await infer('demo-onnx', k)).out);
    for (let round = 0; round < 3; round++) {
      const got = await Promise.all(Array.from({ length: 24 }, (_, i) => infer(i % 2 ? 'demo-onnx' : 'demo-logistic', i % 8)));
      got.forEach(({ x, out }, i) => {
        expect(out.length).toBe(rows);
        if (i % 2) expect(Array.from(out)).toEqual(Array.from(alone.get(i % 8)!));
        else for (let r = 0; r < rows; r += 97) expect(out[r]).toBeCloseTo(logistic(x.subarray(r * 100, (r + 1) * 100), w, 0.25), 5);
      });
    }
  });

  it('POST /v1/models/{m}:predict with instances as rows or objects', async () => {
    const a = new Array(100).fill(0.3);
    const rows = await postJson(`${s.url}/v1/models/demo-logistic:predict`, { instances: [a, a] });
    expect(rows.status).toBe(200);
    expect(rows.json).toMatchObject({ model_name: 'demo-logistic', model_version: '1' });
    expect(rows.json.predictions).toHaveLength(2);
    expect(rows.json.predictions[0]).toBeCloseTo(logistic(a, w, 0.25), 6);
    const objs = await postJson(`${s.url}/v1/models/demo-logistic:predict`, { instances: [{ features: a }] });
    expect(objs.json.predictions[0]).toBeCloseTo(logistic(a, w, 0.25), 6);
  });

  it('GET /v2/models/{m}/stats in the statistics-extension shape', async () => {
    const { status, json } = await getJson(`${s.url}/v2/models/demo-logistic/stats`);
    expect(status).toBe(200);
    const st = json.model_stats[0];
    expect(st).toMatchObject({ name: 'demo-logistic', version: '1' });
    expect(st.inference_count).toBeGreaterThan(0);
    // inference_count counts rows (Triton's meaning), success counts requests.
    expect(st.inference_count).toBeGreaterThanOrEqual(st.inference_stats.success.count);
    expect(st.inference_stats.compute_input.count).toBe(st.inference_stats.compute_infer.count);
    expect(st.batch_stats.length).toBeGreaterThan(0);
    expect((await getJson(`${s.url}/v2/models/demo-logistic/versions/1/stats`)).status).toBe(200);
  });

  it('GET and POST /v2/repository/index, load and unload', async () => {
    const idx = await getJson(`${s.url}/v2/repository/index`);
    expect(idx.json).toEqual([
      { name: 'demo-bandit', state: 'UNAVAILABLE', reason: 'not loaded' },
      { name: 'demo-logistic', version: '1', state: 'READY', reason: '' },
      { name: 'demo-onnx', version: '1', state: 'READY', reason: '' },
    ]);
    const loaded = await postJson(`${s.url}/v2/repository/models/demo-logistic/load`, { parameters: { version: '2' } });
    expect(loaded).toMatchObject({ status: 200, json: { model_name: 'demo-logistic', model_version: '2' } });
    const r = await postJson(`${s.url}/v2/models/demo-logistic/infer`, demoBody(1, 0.1));
    expect(r.json.model_version).toBe('2');
    expect(r.json.outputs[0].data[0]).toBeCloseTo(logistic(new Array(100).fill(0.1), w.map((v) => v * 2), 0.25), 6);
    expect((await postJson(`${s.url}/v2/repository/models/demo-onnx/unload`, '')).status).toBe(200);
    const ready = await postJson(`${s.url}/v2/repository/index`, { ready: true });
    expect(ready.json.map((m: { name: string }) => m.name)).toEqual(['demo-logistic']);
    expect((await getJson(`${s.url}/v2/models/demo-onnx/ready`)).status).toBe(404);
    expect((await postJson(`${s.url}/v2/repository/models/demo-onnx/load`, '')).status).toBe(200);
    expect((await getJson(`${s.url}/v2/models/demo-onnx/ready`)).status).toBe(200);
    await postJson(`${s.url}/v2/repository/models/demo-logistic/load`, { parameters: { version: '1' } });
  });

  it('answers unknown paths with 404 ROUTE_NOT_FOUND and wrong methods with 405', async () => {
    const nf = await fetch(`${s.url}/v3/nothing`);
    expect(nf.status).toBe(404);
    expect(await nf.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    const na = await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'GET' });
    expect(na.status).toBe(405);
    expect(await na.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });
  });

  it('GET /metrics serves Prometheus text', async () => {
    const res = await fetch(`${s.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('sluice_request_duration_seconds{model="demo-logistic",version="1",quantile="0.99"}');
  });
});
