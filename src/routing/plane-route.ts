/**
 * A route as the data plane of one I/O thread holds it: the published spec (immutable, by
 * generation, structured-clonable: it crosses threads) and the assigner built from it once per
 * thread, so that a request pays one pick and no allocation beyond its decision.
 */
import type { ChunkVariant } from '../learn/decision-chunk.js';
import type { RoutedMetrics } from '../metrics/version-metrics.js';
import { Assigner } from './assign.js';
import type { RouteSpec, Variant } from './route.js';

/**
 * What the control plane publishes: the spec and its generation (unique, never reused); a bandit
 * route also its weights' state cell (src/routing/route-bandit.ts), which the control plane
 * rewrites as rewards arrive while the route stays in force. `registryGen` is the route's
 * generation in the registry (the same on every replica, unlike `gen`, this process's): what
 * its decisions record as `route_gen`, so an experiment knows its decisions wherever they were
 * made. A route put in force without the registry (tests, tools) records `gen`.
 */
export type PublishedRoute = RouteSpec & { gen: number; registryGen?: number; weights?: SharedArrayBuffer };

export class PlaneRoute {
  readonly assigner: Assigner;
  /** Answers given per variant (index as in spec.variants) on this thread, while in force. */
  readonly answered: Float64Array;
  /** Requests sent to each variant that failed (bad inputs, model errors, deadlines), on this thread. */
  readonly failed: Float64Array;
  /** Each variant's key in the decision chunks, its row part encoded on first use (src/learn/decision-chunk.ts chunkVariant). */
  readonly chunkVariants: Array<ChunkVariant | undefined>;
  /**
   * Each variant's latency recorder on this thread (index as in spec.variants), looked up once
   * here so that a request records into it by index: no key built, no map read, no lock.
   */
  readonly latency: RoutedMetrics[];

  constructor(readonly spec: PublishedRoute, latencyOf: (variant: Variant) => RoutedMetrics) {
    this.assigner = new Assigner(spec, spec.weights);
    this.answered = new Float64Array(spec.variants.length);
    this.failed = new Float64Array(spec.variants.length);
    this.chunkVariants = new Array<ChunkVariant | undefined>(spec.variants.length);
    this.latency = spec.variants.map(latencyOf);
  }

  get gen(): number {
    return this.spec.gen;
  }

  /** What this route's decisions record as their route generation (see PublishedRoute). */
  get decisionGen(): number {
    return this.spec.registryGen ?? this.spec.gen;
  }
}
