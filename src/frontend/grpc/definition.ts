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
import descriptor from 'protobufjs/ext/descriptor/index.js';

const { FileDescriptorProto } = descriptor as unknown as { FileDescriptorProto: { decode(b: Uint8Array): unknown; encode(m: never): { finish(): Uint8Array } } };
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

interface DescriptorMessage {
  name: string;
  field: Array<{ name: string; typeName?: string; label?: number; type?: number }>;
  nestedType: DescriptorMessage[];
  options?: { mapEntry?: boolean };
}

/** protoc's name for a map field's entry type: the field name in CamelCase plus "Entry". */
function entryName(field: string): string {
  return field.split('_').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('') + 'Entry';
}

/**
 * protobufjs (under proto-loader) describes a map field's entry type with the field's own name
 * ("Parameters") and a relative type reference, where protoc writes "ParametersEntry" and a
 * fully qualified name. Strict reflection clients (grpcurl, Go protobuf) reject the former
 * ("incorrect implicit map entry name"), so the descriptors served by reflection are rewritten
 * to protoc's form.
 */
function fixMapEntries(bytes: Uint8Array): Uint8Array {
  const file = FileDescriptorProto.decode(bytes) as unknown as { package?: string; messageType: DescriptorMessage[] };
  const walk = (m: DescriptorMessage, scope: string) => {
    const path = `${scope}.${m.name}`;
    for (const nested of m.nestedType) {
      if (!nested.options?.mapEntry) continue;
      const field = m.field.find((f) => f.typeName === nested.name || f.typeName === `${path}.${nested.name}`);
      if (!field) continue;
      nested.name = entryName(field.name);
      field.typeName = `${path}.${nested.name}`;
    }
    for (const nested of m.nestedType) walk(nested, path);
  };
  for (const m of file.messageType) walk(m, file.package ? `.${file.package}` : '');
  return FileDescriptorProto.encode(file as never).finish();
}

function withFixedDescriptors(def: protoLoader.PackageDefinition): protoLoader.PackageDefinition {
  const cache = new Map<Buffer, Uint8Array>();
  const out: protoLoader.PackageDefinition = {};
  for (const [name, entry] of Object.entries(def)) {
    const protos = (entry as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    if (!protos) {
      out[name] = entry;
      continue;
    }
    const fixed = protos.map((b) => {
      let f = cache.get(b);
      if (!f) cache.set(b, (f = fixMapEntries(b)));
      return Buffer.from(f);
    });
    out[name] = Object.assign(Object.create(Object.getPrototypeOf(entry) as object) as object, entry, { fileDescriptorProtos: fixed }) as typeof entry;
  }
  return out;
}

/** Sluice's own services (proto/sluice.proto): feedback. */
export const SLUICE_PROTO_FILE = path.join(projectRoot, 'proto', 'sluice.proto');
export const sluiceDefinition = protoLoader.loadSync(SLUICE_PROTO_FILE, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });

export function feedbackService(): ServiceDefinition {
  return sluiceDefinition['sluice.v1.Feedback'] as unknown as ServiceDefinition;
}

/** What reflection describes: the inference service, Sluice's feedback service and the health service. */
export const reflectedDefinition = withFixedDescriptors({
  ...packageDefinition,
  ...sluiceDefinition,
  ...protoLoader.loadSync(healthProtoPath, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true }),
});

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
