/**
 * Model configuration and statistics in the shapes Triton returns (the JSON form of
 * model_config.proto and of the statistics extension), which tritonclient and perf_analyzer
 * read: perf_analyzer needs max_batch_size and per-input dims from /config.
 */
import type { TensorSpec } from '../../model/manifest.js';
import type { VersionMetrics } from '../../metrics/version-metrics.js';
import type { ModelConfig } from '../../service/types.js';

function tritonType(dt: string): string {
  return dt === 'BYTES' ? 'TYPE_STRING' : `TYPE_${dt}`;
}

function tensors(specs: TensorSpec[], batched: boolean): Array<Record<string, unknown>> {
  // With batching, Triton's dims leave out the batch dimension.
  return specs.map((t) => ({ name: t.name, data_type: tritonType(t.datatype), dims: batched ? t.shape.slice(1) : t.shape }));
}

export function tritonConfig(c: ModelConfig, instances: number): Record<string, unknown> {
  const batched = c.maxBatchSize > 0;
  return {
    name: c.name,
    platform: c.platform,
    backend: c.kind === 'onnx' ? 'onnxruntime' : 'sluice',
    version_policy: { latest: { num_versions: 1 } },
    max_batch_size: c.maxBatchSize,
    input: tensors(c.inputs, batched),
    output: tensors(c.outputs, batched),
    ...(batched
      ? { dynamic_batching: { max_queue_delay_microseconds: c.maxQueueDelayUs, default_queue_policy: { max_queue_size: c.maxQueueSize } } }
      : {}),
    instance_group: [{ name: c.name, kind: 'KIND_CPU', count: c.dispatch === 'pool' ? instances : 1 }],
    parameters: { sluice_dispatch: { string_value: c.dispatch }, sluice_version: { string_value: c.version } },
  };
}

const stat = (count: number, ns: number) => ({ count, ns: Math.round(ns) });

/**
 * The statistics of one version, with Triton's meanings (docs/protocol/extension_statistics.md):
 * inference_count counts rows, execution_count executions (batches), and the per-request
 * queue and compute_* figures share one count (perf_analyzer refuses stats whose compute counts
 * differ, and finds the version to report by its growing queue count).
 *
 * compute_input and compute_output count every executed request with 0 ns: Sluice has no
 * separate step for them to time. Inline runtimes read the request's typed arrays in place and
 * return their outputs as typed arrays; for pooled batches, the copy of each request's rows
 * into the shared arena slot and of its outputs out of it (a memcpy of its rows) happen on the
 * I/O thread around the batch and are not timed apart: they are in `success` but in no
 * compute figure. Their time is within the model's compute_infer for inline ONNX models, whose
 * runtime builds its tensors inside the call it times. There is no response cache: cache_hit and
 * cache_miss are always 0 (present because perf_analyzer reads them).
 */
export function tritonStats(m: VersionMetrics): Record<string, unknown> {
  return {
    name: m.model,
    version: m.version,
    last_inference: m.lastInference,
    inference_count: m.rows,
    execution_count: m.executions,
    inference_stats: {
      success: stat(m.success, m.successNs),
      fail: stat(m.failure, m.failureNs),
      queue: stat(m.queued, m.queueNs),
      compute_input: stat(m.computed, 0),
      compute_infer: stat(m.computed, m.computeNs),
      compute_output: stat(m.computed, 0),
      cache_hit: stat(0, 0),
      cache_miss: stat(0, 0),
    },
    batch_stats: [...m.executionsByRows]
      .sort((a, b) => a[0] - b[0])
      .map(([rows, s]) => ({ batch_size: rows, compute_input: stat(s.count, 0), compute_infer: stat(s.count, s.ns), compute_output: stat(s.count, 0) })),
  };
}
