/**
 * The prediction cache of one model version: answers to byte-identical requests, bounded in
 * entries and bytes, with a time to live, evicting the least recently used (`lru-cache`).
 *
 * - One cache per loaded version (created with it, cleared when it is freed), so an answer is
 *   never served from another version and a swap starts empty: the key needs no version.
 * - The key is every input's name, datatype, shape and exact bytes, in signature order. Every
 *   output is stored, and the request's output selection applies afterwards as for a computed
 *   answer, so two requests asking for different outputs share the entry correctly.
 * - Nothing is shared with callers: inputs are copied into the key (HTTP's FP32 inputs are views
 *   of a reused slab), outputs are copied in (pool outputs may be views of arena slots) and
 *   copied out again on every hit (a front end or caller may write into what it got).
 */
import { LRUCache } from 'lru-cache';
import type { CachePolicy } from '../../model/policies.js';
import type { Tensor } from '../../model/tensor.js';
import type { BatchTensor } from '../../worker/runtimes/index.js';

/** Rough bookkeeping bytes of one entry beyond its key and data (objects, arrays, list node). */
const ENTRY_OVERHEAD = 96;

function copy(outs: readonly BatchTensor[]): BatchTensor[] {
  return outs.map((t) => ({ data: t.data.slice(), shape: [...t.shape] }));
}

export class PredictionCache {
  private readonly lru: LRUCache<string, BatchTensor[]>;

  constructor(readonly policy: CachePolicy, onEvict: () => void = () => undefined) {
    this.lru = new LRUCache<string, BatchTensor[]>({
      max: policy.maxEntries,
      ...(policy.maxBytes > 0 ? {
        maxSize: policy.maxBytes,
        sizeCalculation: (outs: BatchTensor[], key: string) => key.length + ENTRY_OVERHEAD + outs.reduce((n, t) => n + t.data.byteLength + 8 * t.shape.length, 0),
      } : {}),
      ...(policy.ttlMs > 0 ? { ttl: policy.ttlMs } : {}),
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') onEvict();
      },
    });
  }

  /** The exact-bytes key of a checked request's inputs (signature order). */
  key(inputs: readonly Tensor[]): string {
    let k = '';
    for (const t of inputs) {
      // Latin-1 maps each byte to one char: a one-byte string holding exactly the input bytes.
      k += t.name + '\0' + t.datatype + '[' + t.shape.join(',') + ']' + t.data.byteLength + ':' + Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('latin1');
    }
    return k;
  }

  /** A private copy of the cached outputs, or undefined (absent or past its TTL). */
  get(key: string): BatchTensor[] | undefined {
    const hit = this.lru.get(key);
    return hit && copy(hit);
  }

  set(key: string, outs: readonly BatchTensor[]): void {
    this.lru.set(key, copy(outs));
  }

  get entries(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  clear(): void {
    this.lru.clear();
  }
}
