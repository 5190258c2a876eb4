/**
 * What a chaos scenario is. Adding one is one file in chaos/scenarios/ exporting a `Scenario`,
 * plus its line in chaos/scenarios/index.ts:
 *
 *   export const myScenario: Scenario = {
 *     name: 'my-fault', description: 'what breaks and what must hold', needs: ['postgres'],
 *     async run(ctx) {
 *       const sluice = await ctx.sluice({ env: { ... } });
 *       const load = ctx.load({ url: sluice.http, model: 'm', rate: 200, durationS: 10 });
 *       ... inject the fault, mark its window with ctx.now() ...
 *       const answers = await load.done;
 *       return { checks: [check('no failure outside the fault', ..., 'figures')], figures: { ... } };
 *     },
 *   };
 *
 * Each check states its expectation in its name and its measured figures in its detail, so a
 * FAIL says what was expected and what happened, and the bound can be changed in one place.
 */
import type { ChaosContext } from './context.js';

/** Outside services a scenario starts for itself (each scenario gets private ones). */
export type Need = 'postgres' | 's3' | 'root';

export interface Check {
  /** The expectation, e.g. "0 failed inference requests". */
  name: string;
  pass: boolean;
  /** What was measured. */
  detail: string;
}

export interface ScenarioResult {
  checks: Check[];
  /** Figures printed under the checks: request counts by window and code, recovery times, RSS. */
  figures: Record<string, string | number>;
}

export interface Scenario {
  name: string;
  description: string;
  needs: Need[];
  /** CI runs the scenarios marked fast (each well under 30 s on a quiet machine). */
  fast?: boolean;
  run(ctx: ChaosContext): Promise<ScenarioResult>;
}

export function check(name: string, pass: boolean, detail = ''): Check {
  return { name, pass, detail };
}

/** Resident memory may grow with warm-up and caches, but not without bound. */
export const MEMORY_BOUND = { factor: 1.5, slackMb: 100 };

export function memoryCheck(label: string, beforeMb: number, afterMb: number): Check {
  const limit = Math.max(beforeMb * MEMORY_BOUND.factor, beforeMb + MEMORY_BOUND.slackMb);
  return check(`${label}: RSS after <= max(${MEMORY_BOUND.factor}x, +${MEMORY_BOUND.slackMb} MB) of before`, afterMb <= limit,
    `before ${beforeMb.toFixed(0)} MB, after ${afterMb.toFixed(0)} MB (limit ${limit.toFixed(0)} MB)`);
}
