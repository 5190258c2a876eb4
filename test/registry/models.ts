/** Small model versions for registry tests: real manifests (logistic, 4 features) and payloads. */
import type { Registry } from '../../src/registry/registry.js';
import type { ModelVersion, RegisterInput } from '../../src/registry/types.js';

export const FEATURES = 4;

/** A logistic payload whose weights depend on `seed`, so each version's bytes differ. */
export function payloadFor(seed: number): Uint8Array {
  const weights = [Array.from({ length: FEATURES }, (_, i) => ((i + seed) % 5) / 10 - 0.2)];
  return Buffer.from(JSON.stringify({ weights, bias: [seed / 100] }));
}

/** A manifest draft in model.json form, without version or payload hash. */
export function draft(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    kind: 'logistic',
    signature: {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, FEATURES] }],
      outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
    },
    max_batch_size: 64,
    ...extra,
  };
}

let seed = 1;

/** Registers `name` at `version` (or bumped) with a fresh payload. */
export function registerModel(registry: Registry, name: string, opts: Partial<RegisterInput> = {}): Promise<ModelVersion> {
  return registry.register({
    manifest: draft(name),
    payload: payloadFor(seed++),
    actor: 'test-admin',
    ...opts,
  });
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}
