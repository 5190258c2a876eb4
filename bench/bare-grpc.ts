/**
 * The baseline for the gRPC benchmark: a bare @grpc/grpc-js server with proto-loader's stock
 * (protobufjs) codec, answering ModelInfer with the same demo-logistic computation and nothing
 * else. Prints its port on stdout.
 */
import * as grpc from '@grpc/grpc-js';
import { packageDefinition, SERVICE_NAME } from '../src/frontend/grpc/definition.js';

const W = Array.from({ length: 100 }, (_, i) => ((i % 7) - 3) / 10);
// proto-loader's definition as loaded, not Sluice's raw-bytes inferenceService().
const service = packageDefinition[SERVICE_NAME] as unknown as grpc.ServiceDefinition;

interface Req {
  model_name: string;
  id: string;
  inputs: Array<{ shape: number[]; contents?: { fp32_contents: number[] } }>;
  raw_input_contents: Buffer[];
}

const server = new grpc.Server();
server.addService(service, {
  ModelInfer: (call: grpc.ServerUnaryCall<Req, unknown>, cb: grpc.sendUnaryData<unknown>) => {
    const req = call.request;
    const rows = req.inputs[0]!.shape[0]!;
    const raw = req.raw_input_contents[0];
    const x = raw ? new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) : Float32Array.from(req.inputs[0]!.contents!.fp32_contents);
    const out = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let z = 0.25;
      for (let i = 0; i < 100; i++) z += x[r * 100 + i]! * W[i]!;
      out[r] = 1 / (1 + Math.exp(-z));
    }
    cb(null, {
      model_name: req.model_name, model_version: '1', id: req.id,
      outputs: [{ name: 'probability', datatype: 'FP32', shape: [rows, 1] }],
      raw_output_contents: [Buffer.from(out.buffer)],
    });
  },
  ModelMetadata: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {
    name: 'demo-logistic', versions: ['1'], platform: 'bare',
    inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 100] }], outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
  }),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) process.exit(1);
  console.log(port);
});
