/**
 * The gRPC service definition from proto/inference.proto, with the two inference methods
 * switched to Sluice's own codec: their handlers receive and return serialized bytes, decoded
 * and encoded by codec/grpc-infer.ts straight into typed arrays. Every other method uses
 * proto-loader's (de)serializers.
 */
import path from 'node:path';
import type { ServiceDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { projectRoot } from '../../paths.js';

export const PROTO_FILE = path.join(projectRoot, 'proto', 'inference.proto');
export const SERVICE_NAME = 'inference.GRPCInferenceService';

export const packageDefinition = protoLoader.loadSync(PROTO_FILE, {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** What reflection describes: the inference service and the health service. */
export const reflectedDefinition = {
  ...packageDefinition,
  ...protoLoader.loadSync(healthProtoPath, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true }),
};

const identity = (b: Buffer): Buffer => b;

/** The service with raw-bytes ModelInfer and ModelStreamInfer. */
export function inferenceService(): ServiceDefinition {
  const base = packageDefinition[SERVICE_NAME] as unknown as ServiceDefinition;
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(base)) {
    out[name] = name === 'ModelInfer' || name === 'ModelStreamInfer'
      ? { ...method, requestDeserialize: identity, responseSerialize: identity }
      : method;
  }
  return out as unknown as ServiceDefinition;
}
