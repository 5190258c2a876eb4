/**
 * The bare gRPC baseline's service, shared by bench/bare-grpc.ts (one process) and
 * bench/threads-bare-worker.ts (one thread of several): grpc-js with proto-loader's stock
 * (protobufjs) codec, answering ModelInfer with demo-logistic's answer and nothing else.
 */
import type * as grpc from '@grpc/grpc-js';
import { packageDefinition, SERVICE_NAME } from '../src/frontend/grpc/definition.js';
import { demoAnswer } from './engine-util.js';

// proto-loader's definition as loaded, not Sluice's raw-bytes inferenceService().
export const bareService = packageDefinition[SERVICE_NAME] as unknown as grpc.ServiceDefinition;

interface Req {
  model_name: string;
  id: string;
  inputs: Array<{ shape: number[]; contents?: { fp32_contents: number[] } }>;
  raw_input_contents: Buffer[];
}

/** The handlers; `onInfer` is called once per ModelInfer (a thread's served count). */
export function bareHandlers(onInfer: () => void = () => undefined): grpc.UntypedServiceImplementation {
  return {
    ModelInfer: (call: grpc.ServerUnaryCall<Req, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      onInfer();
      const req = call.request;
      const rows = req.inputs[0]!.shape[0]!;
      const raw = req.raw_input_contents[0];
      const x = raw ? new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) : Float32Array.from(req.inputs[0]!.contents!.fp32_contents);
      const out = new Float32Array(rows);
      for (let r = 0; r < rows; r++) out[r] = demoAnswer(x, r * 100);
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
  };
}
