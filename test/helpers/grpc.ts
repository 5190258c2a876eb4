/** A real gRPC server on 127.0.0.1 port 0, and clients built from the proto by proto-loader. */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { createRequire } from 'node:module';
import path from 'node:path';
import { GrpcServer, type GrpcServerOptions } from '../../src/frontend/grpc/server.js';
import { packageDefinition } from '../../src/frontend/grpc/definition.js';
import type { Engine } from '../../src/service/engine.js';

const pkg = grpc.loadPackageDefinition(packageDefinition) as any;

/** A stock client: proto-loader's (protobufjs) serializers, independent of the server's codec. */
export type InferenceClient = grpc.Client & Record<string, any>;

export async function startGrpc(engine: Engine, opts: GrpcServerOptions = {}): Promise<{ server: GrpcServer; address: string; client: InferenceClient }> {
  const server = new GrpcServer(engine, { serverVersion: 'test', ...opts });
  const port = await server.listen('127.0.0.1', 0);
  const address = `127.0.0.1:${port}`;
  const client = new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  }) as InferenceClient;
  return { server, address, client };
}

/** A stock inference client for a server started elsewhere (e.g. a whole server from serve()). */
export function inferenceClient(address: string): InferenceClient {
  return new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure()) as InferenceClient;
}

/** Calls a unary method and resolves with the response or rejects with the ServiceError. */
export function call<T = any>(client: InferenceClient, method: string, req: unknown, options: grpc.CallOptions = {}, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method](req, metadata, options, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** A client whose ModelInfer sends bytes as given (for malformed and oversized messages). */
export { rawClient as rawInferClient } from '../../loadtest/grpc-load.js';

// Located through the packages themselves, not the working directory.
const reflectionProto = path.join(path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');
const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true })) as any;
const reflectionPkg = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto, { keepCase: true, enums: String, defaults: true, oneofs: true })) as any;

export function healthClient(address: string): any {
  return new healthPkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
}

export function reflectionClient(address: string): any {
  return new reflectionPkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
}

/** FP32 rows as the typed `contents` or as `raw_input_contents`. */
export function fp32Request(model: string, x: Float32Array, rows: number, raw: boolean, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const input = { name: 'features', datatype: 'FP32', shape: [rows, x.length / rows] };
  return raw
    ? { model_name: model, inputs: [input], raw_input_contents: [Buffer.from(x.buffer, x.byteOffset, x.byteLength)], ...extra }
    : { model_name: model, inputs: [{ ...input, contents: { fp32_contents: Array.from(x) } }], ...extra };
}

/** Reads the FP32 output of a ModelInferResponse (raw_output_contents). */
export function fp32Output(res: { raw_output_contents: Buffer[] }, i = 0): Float32Array {
  const b = res.raw_output_contents[i]!;
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
