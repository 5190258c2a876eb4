/**
 * The turn budget over real sockets: a server process (one I/O thread) whose inline model
 * computes 300 µs per request, offered about three times what it can answer by the open-loop
 * harness. Its event-loop turns run long; the turn rule must refuse part of them
 * (reason="turn_budget"), every answer must be a success or a coded refusal, and with the budget
 * set out of reach (the knob works) no request is refused by it.
 * Latency figures are the benchmark's business (`npm run bench -- overload`), not this test's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOpenLoop } from '../../loadtest/open-loop.js';
import { summarise } from '../../loadtest/report.js';
import { startSluiceProcess, type SluiceProcess } from '../../loadtest/sluice-process.js';
import { buildTarget } from '../../loadtest/target.js';
import { writeFixture } from '../helpers/repo.js';

async function turnBudgetRefusals(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^sluice_admission_requests_total\{decision="refused",reason="turn_budget"\} (\d+)/m.exec(text);
  expect(m, 'the turn_budget refusal counter is on /metrics').not.toBeNull();
  return Number(m![1]);
}

describe('overload: the turn budget', () => {
  let root: string;
  const servers: SluiceProcess[] = [];

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sluice-turn-'));
    await writeFixture(root, 'busy', '1', { op: 'sum', delay_us: 300 }, { dispatch: 'inline' });
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await rm(root, { recursive: true, force: true });
  });

  const start = async (env: Record<string, string> = {}) => {
    const s = await startSluiceProcess({
      env: { SLUICE_MODELS: 'busy', SLUICE_MODEL_REPOSITORY: root, SLUICE_ALLOW_FIXTURE_MODELS: '1', SLUICE_IO_THREADS: '1', SLUICE_WORKERS: '1', ...env },
    });
    servers.push(s);
    return s;
  };

  /** About 3x what one thread answers at 300 µs a request, for 2 s; the summary. */
  const overload = async (url: string) => {
    const target = await buildTarget({ url, model: 'busy', batch: 1, binary: false });
    return summarise([await runOpenLoop(target, { rate: 10_000, durationS: 2, connections: 16 })]);
  };

  it('refuses part of each long turn once turns run long, and only with OVERLOADED', async () => {
    const s = await start();
    const r = await overload(s.http);
    expect(r.errorCount, JSON.stringify(r.errors)).toBe(0);
    expect(r.refused).toBeGreaterThan(0);
    expect(r.goodput).toBeGreaterThan(100);
    expect(await turnBudgetRefusals(s.http)).toBeGreaterThan(0);
  }, 60_000);

  it('refuses nothing by turn with SLUICE_ADMISSION_TURN_BUDGET_MS out of reach', async () => {
    const s = await start({ SLUICE_ADMISSION_TURN_BUDGET_MS: '10000' });
    const r = await overload(s.http);
    expect(r.errorCount, JSON.stringify(r.errors)).toBe(0);
    expect(await turnBudgetRefusals(s.http)).toBe(0);
  }, 60_000);
});
