/**
 * The statistics extension as perf_analyzer reads it (issue #10): on HTTP and gRPC, queue,
 * compute_input, compute_infer and compute_output share one count (perf_analyzer aborts with
 * "Server side statistics compute counts must be the same" otherwise), the version that served
 * requests is the one whose queue count grew (how perf_analyzer finds it without -x), and
 * inference_count counts rows. Inline (demo-logistic) and pooled (demo-onnx) models.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrpcServer } from '../../src/frontend/grpc/server.js';
import { call, fp32Request, startGrpc, type InferenceClient } from '../helpers/grpc.js';
import { demoBody, getJson, postJson, type TestServer } from '../helpers/http.js';
import { randomF32 } from '../helpers/random.js';
import { startRepoServer } from '../helpers/server.js';

interface Duration { count: number; ns: number }
interface ModelStat {
  name: string;
  version: string;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<'success' | 'fail' | 'queue' | 'compute_input' | 'compute_infer' | 'compute_output' | 'cache_hit' | 'cache_miss', Duration>;
  batch_stats: Array<{ batch_size: number } & Record<'compute_input' | 'compute_infer' | 'compute_output', Duration>>;
}

/** perf_analyzer's DetermineStatsModelVersion without -x: the versions whose queue count grew. */
function grownVersions(before: ModelStat[], after: ModelStat[]): string[] {
  return after.filter((a) => a.inference_stats.queue.count > (before.find((b) => b.version === a.version)?.inference_stats.queue.count ?? 0)).map((a) => a.version);
}

describe('statistics extension (perf_analyzer compatibility)', () => {
  let s: TestServer;
  let grpcServer: GrpcServer;
  let client: InferenceClient;
  const httpStats = async (m: string): Promise<ModelStat[]> => (await getJson(`${s.url}/v2/models/${m}/stats`)).json.model_stats;
  const grpcStats = async (m: string): Promise<ModelStat[]> => (await call(client, 'ModelStatistics', { name: m })).model_stats;

  beforeAll(async () => {
    s = await startRepoServer({ workers: 1 });
    ({ server: grpcServer, client } = await startGrpc(s.engine));
  });
  afterAll(async () => {
    client.close();
    await grpcServer.close(1000);
    await s.close();
  });

  for (const model of ['demo-logistic', 'demo-onnx']) {
    it(`${model}: one count for queue and every compute figure, on HTTP and gRPC; inference_count counts rows`, async () => {
      const before = await httpStats(model);
      const rowsPerRequest = [1, 3, 1, 8, 2, 1];
      // Concurrent requests, so that the pooled model can batch them.
      await Promise.all(rowsPerRequest.map(async (rows, i) => {
        if (i % 2) {
          await call(client, 'ModelInfer', fp32Request(model, randomF32(rows * 100, i), rows, true));
        } else {
          const r = await postJson(`${s.url}/v2/models/${model}/infer`, demoBody(rows, 0.1));
          expect(r.status).toBe(200);
        }
      }));
      const [st] = await httpStats(model);
      const [g] = await grpcStats(model);
      expect(g).toEqual(st);
      const is = st!.inference_stats;
      const n = rowsPerRequest.length + (before[0]?.inference_stats.success.count ?? 0);
      expect(is.success.count).toBe(n);
      for (const k of ['queue', 'compute_input', 'compute_infer', 'compute_output'] as const) expect(is[k].count, k).toBe(n);
      expect(is.compute_infer.ns).toBeGreaterThan(0);
      expect(is.cache_hit).toEqual({ count: 0, ns: 0 });
      expect(is.cache_miss).toEqual({ count: 0, ns: 0 });
      expect(st!.inference_count).toBe(rowsPerRequest.reduce((a, b) => a + b, 0) + (before[0]?.inference_count ?? 0));
      expect(st!.execution_count).toBeGreaterThan(0);
      expect(st!.execution_count).toBeLessThanOrEqual(n);
      // Per batch size: executions of that size, the same count in its three figures.
      expect(st!.batch_stats.reduce((a, b) => a + b.compute_infer.count, 0)).toBe(st!.execution_count);
      for (const b of st!.batch_stats) expect(b.compute_input.count).toBe(b.compute_infer.count);
      // What perf_analyzer does without -x: the version whose queue count grew is the one served.
      expect(grownVersions(before, [st!])).toEqual(['1']);
      expect(grownVersions([st!], await grpcStats(model))).toEqual([]);
    });
  }
});
