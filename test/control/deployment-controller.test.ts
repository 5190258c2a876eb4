/**
 * The deployment controller's decisions (pure): canary steps advance only when healthy, old
 * enough and with enough candidate requests, roll back when unhealthy (on errors at once, on
 * latency or drift once the failure has held for confirm_s), promote at 100%;
 * blue-green bakes then promotes, or switches back on a failed check; shadow decides by its rule
 * after its duration.
 */
import { describe, expect, it } from 'vitest';
import { next } from '../../src/control/deployments/controller.js';
import type { VersionWindow } from '../../src/control/deployments/judge.js';
import { parseDeployment } from '../../src/control/deployments/spec.js';
import type { DeploymentRecord } from '../../src/control/deployments/store.js';

const T0 = Date.UTC(2026, 11, 2);

function record(body: Record<string, unknown>, step = 0, status: DeploymentRecord['status'] = 'running'): DeploymentRecord {
  return {
    id: 1, spec: parseDeployment({ model: 'm', candidate: '2', ...body }), stable: '1', candidate: '2', status, step, stepStartedAt: new Date(T0),
    baseline: null, lastVerdict: null, outcome: null, createdBy: 't', createdAt: new Date(T0), finishedAt: null,
  };
}

function win(requests: number, errors: number, ms: number): VersionWindow {
  // Latencies spread evenly around `ms`.
  const latency: Array<[number, number]> = [[ms * 0.8, Math.floor(requests / 3)], [ms, Math.floor(requests / 3)], [ms * 1.2, requests - 2 * Math.floor(requests / 3)]];
  return { requests, errors, latency, p50: ms, p99: ms * 1.2 };
}

const healthy = { stable: win(5000, 5, 2), candidate: win(500, 0, 2) };

describe('deployment controller', () => {
  it('canary: waits for the step minimum time and requests, then advances; promotes at 100%', () => {
    const d = record({ kind: 'canary', step_min_s: 30, step_min_requests: 200 });
    expect(next(d, T0 + 10_000, healthy).transition).toBeNull();
    expect(next(d, T0 + 40_000, { ...healthy, candidate: win(150, 0, 2) }).transition).toBeNull();
    expect(next(d, T0 + 40_000, healthy).transition).toMatchObject({ action: 'advance', step: 1, to: 'running' });
    const last = record({ kind: 'canary', step_min_s: 30 }, 4);
    expect(next(last, T0 + 40_000, healthy).transition).toMatchObject({ action: 'promote', to: 'promoted' });
    const manual = record({ kind: 'canary', step_min_s: 30, auto_promote: false }, 4);
    expect(next(manual, T0 + 40_000, healthy)).toMatchObject({ transition: null, verdict: { waiting: 'promote' } });
  });

  it('canary: rolls back at once on errors (and on latency with confirm_s 0), whatever the step age', () => {
    const d = record({ kind: 'canary', step_min_s: 300 });
    expect(next(d, T0 + 1_000, { stable: win(5000, 5, 2), candidate: win(100, 20, 2) }).transition).toMatchObject({ action: 'rollback', to: 'rolled_back', reason: expect.stringMatching(/^errors:/) });
    const atOnce = record({ kind: 'canary', checks: { confirm_s: 0 } });
    const latency = next(atOnce, T0 + 1_000, { stable: win(5000, 5, 2), candidate: win(100, 0, 10) }).transition;
    expect(latency).toMatchObject({ action: 'rollback', reason: expect.stringMatching(/^latency:/) });
    expect(latency!.reason).not.toMatch(/failing for/);
  });

  it('canary: rolls back on latency once the failure has held for confirm_s, the step waiting meanwhile', () => {
    const d = record({ kind: 'canary', step_min_s: 1, step_min_requests: 10, checks: { confirm_s: 3 } });
    const slow = { stable: win(5000, 5, 2), candidate: win(100, 0, 10) };
    const first = next(d, T0 + 1_000, slow);
    expect(first).toMatchObject({ transition: null, verdict: { verdict: 'unhealthy', suspect: { since: new Date(T0 + 1_000).toISOString() }, waiting: 'latency failing for 0.0 of 3 s before a rollback' } });
    d.lastVerdict = first.verdict as Record<string, unknown>;
    expect(next(d, T0 + 3_500, slow)).toMatchObject({ transition: null, verdict: { suspect: { since: new Date(T0 + 1_000).toISOString() }, waiting: expect.stringMatching(/^latency failing for 2\.5 of 3 s/) } });
    expect(next(d, T0 + 4_000, slow).transition).toMatchObject({ action: 'rollback', reason: expect.stringMatching(/^latency: .*\(failing for 3\.0 s\)$/) });
    // A healthy look in between ends the suspicion: the step moves on, and a later failure starts a new clock.
    const healthyLook = next(d, T0 + 3_500, healthy);
    expect(healthyLook.transition).toMatchObject({ action: 'advance' });
    d.lastVerdict = { verdict: 'healthy' };
    expect(next(d, T0 + 4_000, slow).transition).toBeNull();
    // A suspicion from another step (another window) does not count.
    d.lastVerdict = first.verdict as Record<string, unknown>;
    d.stepStartedAt = new Date(T0 + 2_000);
    expect(next(d, T0 + 4_500, slow)).toMatchObject({ transition: null, verdict: { suspect: { since: new Date(T0 + 4_500).toISOString() } } });
  });

  it('does nothing for a paused deployment', () => {
    expect(next(record({ kind: 'canary' }, 0, 'paused'), T0 + 1e6, healthy).transition).toBeNull();
  });

  it('blue-green: switches back on a failed check during the bake; promotes after it', () => {
    const d = record({ kind: 'blue-green', bake_s: 60 });
    expect(next(d, T0 + 5_000, { stable: win(5000, 5, 2), candidate: win(300, 60, 2) }).transition).toMatchObject({ action: 'rollback' });
    expect(next(d, T0 + 5_000, healthy).transition).toBeNull();
    expect(next(d, T0 + 61_000, { stable: win(5000, 5, 2), candidate: win(10, 0, 2) }).transition).toMatchObject({ action: 'promote' });
  });

  it('shadow: promotes within the rule after its duration, discards outside it', () => {
    const d = record({ kind: 'shadow', duration_s: 60, rule: { min_compared: 100, min_agreement: 0.99 } });
    const good = { mirrored: 500, errors: 0, compared: 500, agreeing: 500, shadowP99: 2, callerP99: 2 };
    expect(next(d, T0 + 30_000, { shadow: good }).transition).toBeNull();
    expect(next(d, T0 + 61_000, { shadow: good }).transition).toMatchObject({ action: 'promote' });
    expect(next(d, T0 + 61_000, { shadow: { ...good, agreeing: 480 } }).transition).toMatchObject({ action: 'rollback', reason: expect.stringMatching(/^discarded: agreement 0.9600/) });
    // Too little evidence is no verdict: it keeps running; a shadow failing everything is judged on what was mirrored.
    expect(next(d, T0 + 61_000, { shadow: { ...good, compared: 50, agreeing: 50 } })).toMatchObject({ transition: null, verdict: { waiting: '50 of 100 answers compared' } });
    expect(next(d, T0 + 61_000, { shadow: { ...good, errors: 500, compared: 0, agreeing: 0 } }).transition).toMatchObject({ action: 'rollback', reason: 'discarded: error rate 1.0000 > 0.01' });
  });

  it('refuses bad definitions with DEPLOYMENT_INVALID naming the field', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ kind: 'rolling' }, /kind must be one of/],
      [{ kind: 'canary', steps: [5, 1, 100] }, /steps\[1\] must be larger/],
      [{ kind: 'canary', steps: [5, 50] }, /must end at 100/],
      [{ kind: 'canary', bake_s: 5 }, /bake_s is a blue-green setting/],
      [{ kind: 'shadow', fraction: 2 }, /fraction must be/],
      [{ kind: 'canary', checks: { alpha: 0.9 } }, /checks.alpha/],
      [{ kind: 'canary', checks: { confirm_s: -1 } }, /checks.confirm_s must be seconds in \[0, 3600\]/],
      [{ kind: 'blue-green', checks: { confirm_s: '3' } }, /checks.confirm_s/],
      [{ kind: 'canary', stable: '2' }, /different versions/],
      [{ kind: 'canary', extra: 1 }, /unknown field "extra"/],
    ];
    for (const [body, message] of bad) expect(() => parseDeployment({ model: 'm', candidate: '2', ...body }), JSON.stringify(body)).toThrow(message);
  });
});
