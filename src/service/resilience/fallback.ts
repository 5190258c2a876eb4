/**
 * Fallback answers. `default`: the manifest's one-row outputs repeated for every row of the
 * request, built fresh for each answer (nothing shared with callers). The other policies
 * (`previous_version`, `model`) run another loaded version; see guard.ts.
 */
import type { Manifest } from '../../model/manifest.js';
import { rowElements } from '../../model/policies.js';
import { arrayClassOf, type TypedArray } from '../../model/tensor.js';
import type { BatchTensor } from '../../worker/runtimes/index.js';

export type FallbackReason = 'error' | 'deadline' | 'circuit_open';

export class DefaultOutputs {
  private readonly rows: Array<{ row: TypedArray; tail: number[] }>;
  private readonly batched: boolean;

  constructor(m: Manifest) {
    const values = m.policies.fallback!.outputs!;
    this.batched = m.batching.maxBatchSize > 0;
    this.rows = m.signature.outputs.map((spec) => {
      const Ctor = arrayClassOf(spec.datatype)!;
      const n = rowElements(spec.shape, this.batched);
      const row = new Ctor(n);
      const v = values[spec.name]!;
      for (let i = 0; i < n; i++) (row as unknown as Array<number | bigint>)[i] = row instanceof BigInt64Array || row instanceof BigUint64Array ? BigInt(v[i]!) : v[i]!;
      return { row, tail: this.batched ? spec.shape.slice(1) : spec.shape };
    });
  }

  /** Every output, shaped for `rows` rows. */
  build(rows: number): BatchTensor[] {
    return this.rows.map(({ row, tail }) => {
      if (!this.batched) return { data: row.slice(), shape: [...tail] };
      const Ctor = row.constructor as new (n: number) => TypedArray;
      const data = new Ctor(row.length * rows);
      for (let r = 0; r < rows; r++) (data as Float64Array).set(row as Float64Array, r * row.length);
      return { data, shape: [rows, ...tail] };
    });
  }
}
