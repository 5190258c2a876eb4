/**
 * Repeated looks: the controller judges a running canary every interval on a window that grows,
 * each look a test at alpha, so a healthy canary gets dozens of chances to fail by luck. Seeded
 * simulated rollouts through the real controller and judge (healthy: both versions draw latency,
 * errors and predictions from one distribution) measure how often a healthy canary is rolled
 * back: 10 of 150 (7%) when a failure rolls back at once (confirm_s 0, as before this test),
 * and none of 150 when latency and drift failures must hold for the default confirm_s. A real
 * fault (slower, or predicting differently) is still rolled back in every rollout, within
 * confirm_s and a look of its first failure.
 */
import { describe, expect, it } from 'vitest';
import { next } from '../../src/control/deployments/controller.js';
import type { VersionWindow } from '../../src/control/deployments/judge.js';
import { parseDeployment } from '../../src/control/deployments/spec.js';
import type { DeploymentRecord } from '../../src/control/deployments/store.js';
import { mulberry32 } from '../../src/random.js';

const T0 = Date.UTC(2026, 11, 4);
const LOOK_MS = 100; // deployments-http.test.ts's interval: the most looks per step
const PER_LOOK = 150; // requests between looks (1,500/s)

class Growing {
  requests = 0;
  errors = 0;
  private readonly bins = new Map<number, number>();
  private readonly values: number[] = [];
  readonly predictions: number[] = [];

  add(latencyMs: number, error: boolean, prediction: number): void {
    this.requests++;
    if (error) {
      this.errors++;
      return;
    }
    this.bins.set(latencyMs, (this.bins.get(latencyMs) ?? 0) + 1);
    this.values.push(latencyMs);
    this.predictions.push(prediction);
  }

  window(): VersionWindow {
    const v = [...this.values].sort((a, b) => a - b);
    const at = (q: number) => (v.length ? v[Math.ceil(q * v.length) - 1]! : null);
    return { requests: this.requests, errors: this.errors, latency: [...this.bins].sort((a, b) => a[0] - b[0]), p50: at(0.5), p99: at(0.99), predictions: this.predictions };
  }
}

interface Candidate {
  slower?: number;
  shift?: number;
}

/** One rollout, looked at until it leaves its second step or finishes: what ended it and when. */
function rollout(seed: number, confirmS: number | undefined, fault: Candidate = {}): { action: string; atMs: number; reason?: string } {
  const random = mulberry32(seed);
  const latency = (slower: number) => {
    const z = Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
    return Math.round(0.5 * slower * Math.exp(0.3 * z) * 100) / 100;
  };
  const checks = { min_requests: 30, max_p99_ratio: 2, ...(confirmS !== undefined ? { confirm_s: confirmS } : {}) };
  const spec = parseDeployment({ model: 'm', kind: 'canary', candidate: '2', steps: [10, 50, 100], step_min_s: 1, step_min_requests: 30, window_s: 10, checks });
  const d: DeploymentRecord = {
    id: 1, spec, stable: '1', candidate: '2', status: 'running', step: 0, stepStartedAt: new Date(T0),
    baseline: null, lastVerdict: null, outcome: null, createdBy: 't', createdAt: new Date(T0), finishedAt: null,
  };
  let stable = new Growing();
  let candidate = new Growing();
  for (let now = T0 + LOOK_MS; now < T0 + 60_000; now += LOOK_MS) {
    const share = spec.steps[d.step]!;
    for (let i = 0; i < PER_LOOK; i++) {
      const toCandidate = random() < share;
      const error = random() < 0.002;
      const prediction = random() + (toCandidate ? fault.shift ?? 0 : 0);
      (toCandidate ? candidate : stable).add(latency(toCandidate ? fault.slower ?? 1 : 1), error, prediction);
    }
    const n = next(d, now, { stable: stable.window(), candidate: candidate.window() });
    d.lastVerdict = n.verdict as Record<string, unknown>;
    if (!n.transition) continue;
    if (n.transition.action !== 'advance') return { action: n.transition.action, atMs: now - T0, reason: n.transition.reason };
    if (n.transition.step === 2) return { action: 'passed 50%', atMs: now - T0 };
    d.step = n.transition.step!;
    d.stepStartedAt = new Date(now);
    stable = new Growing();
    candidate = new Growing();
  }
  return { action: 'still running', atMs: 60_000 };
}

function rollbackRate(confirmS: number | undefined, trials: number): number {
  let rolledBack = 0;
  for (let seed = 1; seed <= trials; seed++) {
    const r = rollout(seed * 7919, confirmS);
    if (r.action === 'rollback') rolledBack++;
    else expect(r.action).toBe('passed 50%');
  }
  return rolledBack / trials;
}

describe('deployment controller under repeated looks', () => {
  it('rolls back a healthy canary about one rollout in fifteen when a failure acts at once, almost never with the default confirm_s', () => {
    const trials = 150;
    const atOnce = rollbackRate(0, trials);
    const confirmed = rollbackRate(undefined, trials);
    // The first figure shows what the second guards against (and that the simulation can fail a canary).
    expect(atOnce).toBeGreaterThan(0.04);
    expect(confirmed).toBeLessThanOrEqual(0.01);
  }, 60_000);

  for (const [what, fault, check] of [['2.5x slower', { slower: 2.5 }, /^latency:/], ['predicting 0.3 higher', { shift: 0.3 }, /^drift:/]] as const) {
    it(`still rolls back a canary ${what} in every rollout, within confirm_s of its first failure`, () => {
      for (let seed = 1; seed <= 20; seed++) {
        const r = rollout(seed * 104729, undefined, fault);
        expect(r.action).toBe('rollback');
        expect(r.reason).toMatch(check);
        expect(r.reason).toMatch(/\(failing for 3\.[0-9] s\)$/);
        // The first failing look comes once the window holds enough of each version (well under 2 s at 10%).
        expect(r.atMs).toBeLessThan(2_000 + 3_000 + LOOK_MS);
      }
    }, 60_000);
  }
});
