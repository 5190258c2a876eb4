/**
 * The local feedback log on a full disk (a real 1 MiB tmpfs, which needs root): while the
 * database is unreachable and the disk is full, feedback is refused with the coded, retryable
 * FEEDBACK_STORAGE_FULL (503), never acknowledged; once there is room it is accepted, and the
 * replay stores exactly the acknowledged events (the failed write left no partial record).
 */
import { execFileSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { catalogue } from '../../src/errors.js';
import { DecisionLog } from '../../src/learn/decision-log.js';
import { FeedbackIntake, type FeedbackOutcome } from '../../src/learn/feedback.js';
import { describeEachDb, eventually, tempDir, type TestDb } from '../helpers/services.js';
import { switchable } from './helpers.js';

const root = process.getuid?.() === 0;
const status = (o: FeedbackOutcome) => ('status' in o ? o.status : o.error.code);

describeEachDb('feedback on a full disk', (backend) => {
  let t: TestDb;
  let mnt: { dir: string; cleanup: () => Promise<void> };

  beforeAll(async () => {
    t = await backend.open();
    mnt = await tempDir('sluice-fbfull-');
    if (root) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt.dir]);
  });
  afterAll(async () => {
    if (root) execFileSync('umount', [mnt.dir]);
    await mnt?.cleanup();
    await t?.cleanup();
  });

  it.skipIf(!root)('(needs root to mount a tmpfs) refuses with FEEDBACK_STORAGE_FULL, and accepts once there is room', async () => {
    expect(catalogue.FEEDBACK_STORAGE_FULL.http).toBe(503);
    const s = switchable(t.db);
    const decisions = new DecisionLog(s.db, { capacity: 10, batchSize: 10, flushMs: 5 });
    const intake = new FeedbackIntake({ db: s.db, dataDir: mnt.dir, decisions, joinWindowMs: 86_400_000, batchSize: 100, flushMs: 1, probeMinMs: 20, probeMaxMs: 50 });
    await intake.start();
    s.down();
    const ok = await intake.submit([{ eventId: 'full-0', reward: 1 }]);
    expect(ok.map(status)).toEqual(['accepted']);
    const filler = path.join(mnt.dir, 'filler');
    await writeFile(filler, Buffer.alloc(2 * 1024 * 1024)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOSPC') throw e;
    });
    const refused = await intake.submit(Array.from({ length: 50 }, (_, i) => ({ eventId: `full-1-${i}-${'x'.repeat(100)}`, reward: i })));
    expect(new Set(refused.map(status))).toEqual(new Set(['FEEDBACK_STORAGE_FULL']));
    expect(intake.stats.refused.FEEDBACK_STORAGE_FULL).toBe(50);
    await rm(filler);
    const later = await intake.submit([{ eventId: 'full-2', reward: 1 }]);
    expect(later.map(status)).toEqual(['accepted']);
    s.up();
    await eventually(() => (intake.stats.replayPending === 0 && intake.stats.localLogBytes === 0 && !intake.stats.localMode ? true : undefined), 10_000, 'the replay');
    expect(intake.stats).toMatchObject({ replayed: 2, corruptRecords: 0 });
    const rows = await t.db.query<{ event_id: string }>("SELECT event_id FROM feedback_events WHERE event_id LIKE 'full-%' ORDER BY event_id");
    expect(rows.map((r) => r.event_id)).toEqual(['full-0', 'full-2']);
    await intake.close();
    await decisions.close();
  });
});
