/**
 * Issue #10: every transport refuses NaN and infinities in binary tensors as JSON does, and
 * resolves the model (and version) before it checks a request's inputs, as Triton does.
 * Real HTTP, gRPC and WebSocket servers on one engine, port 0.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrpcServer } from '../../src/frontend/grpc/server.js';
import { call, startGrpc, type InferenceClient } from '../helpers/grpc.js';
import { binaryBody, postJson, type TestServer } from '../helpers/http.js';
import { startRepoServer } from '../helpers/server.js';
import { openStream, packr } from '../helpers/ws.js';

type Dt = 'FP32' | 'FP64' | 'FP16';
const BYTES: Record<Dt, number> = { FP32: 4, FP64: 8, FP16: 2 };

/** 100 finite values of `dt` as raw little-endian bytes, with `bad` (a bit pattern or number) at `at`. */
function tensorBytes(dt: Dt, at: number, bad: number | undefined): Buffer {
  const b = Buffer.alloc(100 * BYTES[dt]);
  for (let i = 0; i < 100; i++) {
    if (dt === 'FP32') b.writeFloatLE(0.5, i * 4);
    else if (dt === 'FP64') b.writeDoubleLE(0.5, i * 8);
    else b.writeUInt16LE(0x3800, i * 2); // 0.5 in IEEE half
  }
  if (bad !== undefined) {
    if (dt === 'FP32') b.writeFloatLE(bad, at * 4);
    else if (dt === 'FP64') b.writeDoubleLE(bad, at * 8);
    else b.writeUInt16LE(bad, at * 2);
  }
  return b;
}

/** Each bad value, how its message shows it, for each float datatype. */
const CASES: Array<{ dt: Dt; bad: number; shown: string }> = [
  { dt: 'FP32', bad: NaN, shown: 'NaN' },
  { dt: 'FP32', bad: Infinity, shown: 'Infinity' },
  { dt: 'FP32', bad: -Infinity, shown: '-Infinity' },
  { dt: 'FP64', bad: NaN, shown: 'NaN' },
  { dt: 'FP64', bad: -Infinity, shown: '-Infinity' },
  { dt: 'FP16', bad: 0x7e00, shown: 'NaN' },
  { dt: 'FP16', bad: 0x7c00, shown: 'Infinity' },
  { dt: 'FP16', bad: 0xfc00, shown: '-Infinity' },
];

interface Refusal {
  code: string;
  message: string;
}

describe('request checks on every transport', () => {
  let s: TestServer;
  let grpcServer: GrpcServer;
  let client: InferenceClient;

  beforeAll(async () => {
    s = await startRepoServer({ workers: 1 });
    ({ server: grpcServer, client } = await startGrpc(s.engine));
  });
  afterAll(async () => {
    client.close();
    await grpcServer.close(1000);
    await s.close();
  });

  // ---- one request, each transport: the refusal as (Sluice code, message) ----

  const httpJson = async (model: string, body: unknown, version?: string): Promise<Refusal & { status: number }> => {
    const r = await postJson(`${s.url}/v2/models/${model}${version ? `/versions/${version}` : ''}/infer`, body);
    return { status: r.status, code: r.json.code, message: r.json.error };
  };
  const httpBinary = async (model: string, dt: Dt, bytes: Buffer, version?: string): Promise<Refusal & { status: number }> => {
    const { body, headerLength } = binaryBody({ inputs: [{ name: 'features', datatype: dt, shape: [1, 100], parameters: { binary_data_size: bytes.byteLength } }] }, [bytes]);
    const res = await fetch(`${s.url}/v2/models/${model}${version ? `/versions/${version}` : ''}/infer`, {
      method: 'POST', headers: { 'inference-header-content-length': String(headerLength), 'content-type': 'application/octet-stream' }, body,
    });
    const json = (await res.json()) as { code: string; error: string };
    return { status: res.status, code: json.code, message: json.error };
  };
  const grpcUnary = async (req: Record<string, unknown>): Promise<Refusal & { status: grpc.status }> => {
    const e = await call(client, 'ModelInfer', req).then(() => undefined, (err: grpc.ServiceError) => err);
    expect(e, 'the call should fail').toBeDefined();
    return { status: e!.code, code: String(e!.metadata.get('sluice-code')[0]), message: e!.details };
  };
  const grpcStream = async (req: Record<string, unknown>): Promise<Refusal> => {
    const stream = client.ModelStreamInfer();
    const answer = new Promise<{ error_message: string }>((resolve) => stream.once('data', resolve));
    stream.write(req);
    const { error_message } = await answer;
    stream.end();
    const at = error_message.indexOf(': ');
    return { code: error_message.slice(0, at), message: error_message.slice(at + 2) };
  };
  const ws = async (frame: Record<string, unknown>): Promise<Refusal> => {
    const st = await openStream(s.url);
    st.ws.send(packr.pack({ id: 1, ...frame }));
    const [a] = await st.next(1);
    st.ws.close();
    return { code: a!.code!, message: a!.error! };
  };
  const rawInput = (dt: Dt) => ({ name: 'features', datatype: dt, shape: [1, 100] });

  describe('NaN and infinities in binary tensors are refused like JSON ones', () => {
    it('JSON: a number beyond the datatype is INVALID_TENSOR_VALUE (the reference behaviour)', async () => {
      const data = new Array(100).fill(0.5);
      const r = await httpJson('demo-logistic', `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,100],"data":[${data.slice(0, 7).join(',')},1e400,${data.slice(8).join(',')}]}]}`);
      expect(r).toEqual({ status: 400, code: 'INVALID_TENSOR_VALUE', message: 'input features element 7 (Infinity) is not a valid FP32 value' });
    });

    it('gRPC typed contents: NaN is INVALID_TENSOR_VALUE (the reference behaviour)', async () => {
      const values = new Array(100).fill(0.5);
      values[7] = NaN;
      const r = await grpcUnary({ model_name: 'demo-logistic', inputs: [{ ...rawInput('FP32'), contents: { fp32_contents: values } }] });
      expect(r).toMatchObject({ status: grpc.status.INVALID_ARGUMENT, code: 'INVALID_TENSOR_VALUE' });
    });

    for (const { dt, bad, shown } of CASES) {
      it(`${dt} ${shown}: HTTP binary, gRPC raw (unary and stream) and WebSocket give the same refusal`, async () => {
        const at = 37;
        const bytes = tensorBytes(dt, at, bad);
        const want = { code: 'INVALID_TENSOR_VALUE', message: `input features element ${at} (${shown}) is not a valid ${dt} value` };
        expect(await httpBinary('demo-logistic', dt, bytes)).toEqual({ status: 400, ...want });
        const req = { model_name: 'demo-logistic', inputs: [rawInput(dt)], raw_input_contents: [bytes] };
        expect(await grpcUnary(req)).toEqual({ status: grpc.status.INVALID_ARGUMENT, ...want });
        expect(await grpcStream(req)).toEqual(want);
        expect(await ws({ model: 'demo-logistic', inputs: [{ ...rawInput(dt), data: bytes }] })).toEqual(want);
      });
    }

    it('the check is on the values: finite FP64/FP16 tensors go on to the signature check (DATATYPE_MISMATCH)', async () => {
      for (const dt of ['FP64', 'FP16'] as const) {
        const bytes = tensorBytes(dt, 0, undefined);
        expect((await httpBinary('demo-logistic', dt, bytes)).code).toBe('DATATYPE_MISMATCH');
        expect((await grpcUnary({ model_name: 'demo-logistic', inputs: [rawInput(dt)], raw_input_contents: [bytes] })).code).toBe('DATATYPE_MISMATCH');
        expect((await ws({ model: 'demo-logistic', inputs: [{ ...rawInput(dt), data: bytes }] })).code).toBe('DATATYPE_MISMATCH');
      }
    });

    it('finite binary FP32 tensors are still answered, on a misaligned gRPC field too', async () => {
      const bytes = tensorBytes('FP32', 0, undefined);
      const { body, headerLength } = binaryBody({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], parameters: { binary_data_size: 400 } }] }, [bytes]);
      const res = await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(headerLength) }, body });
      expect(res.status).toBe(200);
      // An id of odd length shifts the raw field off 4-byte alignment.
      const out = await call(client, 'ModelInfer', { model_name: 'demo-logistic', id: 'abc', inputs: [rawInput('FP32')], raw_input_contents: [bytes] });
      expect(out.model_name).toBe('demo-logistic');
    });
  });

  describe('the model and version are resolved before the inputs are checked', () => {
    it('HTTP JSON and binary: unknown model 404 MODEL_NOT_FOUND, unknown version 404 VERSION_NOT_FOUND, whatever the body', async () => {
      expect(await httpJson('nope', { inputs: [] })).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND' });
      expect(await httpJson('nope', 'not json')).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND' });
      expect(await httpJson('demo-logistic', { inputs: [] }, '9')).toMatchObject({ status: 404, code: 'VERSION_NOT_FOUND' });
      expect(await httpBinary('nope', 'FP32', tensorBytes('FP32', 1, NaN))).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND' });
      expect(await httpBinary('demo-logistic', 'FP32', tensorBytes('FP32', 1, NaN), '9')).toMatchObject({ status: 404, code: 'VERSION_NOT_FOUND' });
      // A known model still gets its input errors.
      expect(await httpJson('demo-logistic', { inputs: [] })).toMatchObject({ status: 400, code: 'INVALID_ARGUMENT' });
    });

    it('gRPC unary: unknown model with empty inputs is NOT_FOUND; unknown version too', async () => {
      expect(await grpcUnary({ model_name: 'nope', inputs: [] })).toMatchObject({ status: grpc.status.NOT_FOUND, code: 'MODEL_NOT_FOUND' });
      expect(await grpcUnary({ model_name: 'demo-logistic', model_version: '9', inputs: [] })).toMatchObject({ status: grpc.status.NOT_FOUND, code: 'VERSION_NOT_FOUND' });
      expect(await grpcUnary({ model_name: 'nope', inputs: [rawInput('FP32')], raw_input_contents: [tensorBytes('FP32', 1, NaN)] })).toMatchObject({ status: grpc.status.NOT_FOUND, code: 'MODEL_NOT_FOUND' });
      expect(await grpcUnary({ model_name: 'demo-logistic', inputs: [] })).toMatchObject({ status: grpc.status.INVALID_ARGUMENT, code: 'INVALID_ARGUMENT' });
    });

    it('gRPC stream: unknown model with empty inputs is MODEL_NOT_FOUND; unknown version VERSION_NOT_FOUND', async () => {
      expect((await grpcStream({ model_name: 'nope', inputs: [] })).code).toBe('MODEL_NOT_FOUND');
      expect((await grpcStream({ model_name: 'demo-logistic', model_version: '9', inputs: [] })).code).toBe('VERSION_NOT_FOUND');
    });

    it('WebSocket: unknown model with empty inputs is MODEL_NOT_FOUND; unknown version VERSION_NOT_FOUND', async () => {
      expect((await ws({ model: 'nope', inputs: [] })).code).toBe('MODEL_NOT_FOUND');
      expect((await ws({ model: 'demo-logistic', version: '9', inputs: [] })).code).toBe('VERSION_NOT_FOUND');
      expect((await ws({ model: 'demo-logistic', inputs: [] })).code).toBe('INVALID_ARGUMENT');
    });

    it('v1 predict: unknown model with empty instances is 404 MODEL_NOT_FOUND', async () => {
      const r = await postJson(`${s.url}/v1/models/nope:predict`, { instances: [] });
      expect(r.status).toBe(404);
      expect(r.json.code).toBe('MODEL_NOT_FOUND');
      const known = await postJson(`${s.url}/v1/models/demo-logistic:predict`, { instances: [] });
      expect(known.json.code).toBe('INVALID_ARGUMENT');
    });
  });
});
