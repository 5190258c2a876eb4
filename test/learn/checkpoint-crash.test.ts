/**
 * A process killed while it writes a checkpoint: a real child process (node, the built dist/)
 * saves a large checkpoint and is SIGKILLed once the artifact store's temporary file for it has
 * bytes in it. The previous checkpoint stays the latest and restores exactly; no row names the
 * half-written one; the partial file is removed as a start would remove it; saving works again.
 * Runs on PGlite (the child opens the same embedded database after the test closes it) and, when
 * the service runs, on PostgreSQL (both connected at once).
 */
import { spawn } from 'node:child_process';
import { readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { LocalDirectoryStore, removeStaleTempFiles } from '../../src/artifacts/local.js';
import { CheckpointStore } from '../../src/learn/checkpoints.js';
import { projectRoot } from '../../src/paths.js';
import type { Db } from '../../src/registry/db.js';
import { PgliteThreadDb } from '../../src/registry/pglite-thread.js';
import { describeEachDb, eventually } from '../helpers/services.js';
import { randomF64 } from '../helpers/random.js';

/** 96 MiB of state: compressing and writing it takes long enough to be caught half-way. */
const LARGE = 12 * 1024 * 1024;

/** The child: opens the database and store as the server would, saves, says when done. */
const CHILD = `
const [{ openDb }, { LocalDirectoryStore }, { CheckpointStore }] = await Promise.all([
  import(${JSON.stringify(path.join(projectRoot, 'dist/src/registry/open.js'))}),
  import(${JSON.stringify(path.join(projectRoot, 'dist/src/artifacts/local.js'))}),
  import(${JSON.stringify(path.join(projectRoot, 'dist/src/learn/checkpoints.js'))}),
]);
const { dataDir, databaseUrl, n } = JSON.parse(process.env.SLUICE_TEST_CHILD_ARGS);
const db = await openDb({ dataDir, databaseUrl });
const store = new CheckpointStore(db, new LocalDirectoryStore(dataDir + '/artifacts'));
const state = new Float64Array(n);
for (let i = 0; i < n; i++) state[i] = Math.sin(i) * 1e6 + i; // compresses little: slow on purpose
process.stdout.write('saving\\n');
await store.save({ model: 'm', version: '1', state: 2, events: 99, replica: 'child', watermarks: {} }, state);
process.stdout.write('saved\\n');
await db.close();
`;

describeEachDb('a checkpoint write killed half-way', (backend) => {
  it('leaves the previous checkpoint intact and restorable, and no half checkpoint visible', { timeout: 180_000 }, async () => {
    const t = await backend.open();
    const embedded = backend.name === 'pglite';
    const artifacts = new LocalDirectoryStore(path.join(t.config.dataDir, 'artifacts'));
    let db: Db = t.db;
    let reopened: Db | undefined;
    const child = { proc: undefined as ReturnType<typeof spawn> | undefined };
    try {
      const previous = randomF64(50_000, 7, 100);
      const first = await new CheckpointStore(db, artifacts).save({ model: 'm', version: '1', state: 1, events: 10, replica: 'parent', watermarks: { parent: 1 } }, previous);
      if (embedded) await db.close(); // one process per embedded database: the child's turn

      const args = JSON.stringify({ dataDir: t.config.dataDir, databaseUrl: t.config.databaseUrl, n: LARGE });
      // A file, not --eval: worker threads inherit execArgv, and --input-type would fail them.
      const script = path.join(t.config.dataDir, 'child.mjs');
      await writeFile(script, CHILD);
      const proc = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SLUICE_TEST_CHILD_ARGS: args } });
      child.proc = proc;
      let out = '';
      let err = '';
      proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => proc.once('exit', (code, signal) => resolve(signal ?? code)));

      // The moment the child's temporary artifact file has bytes in it.
      const prefix = `.tmp-${proc.pid}-`;
      const partial = await eventually(async () => {
        if (proc.exitCode !== null) return 'exited';
        for (const name of await readdir(artifacts.tmpDir).catch(() => [] as string[])) {
          if (name.startsWith(prefix) && (await stat(path.join(artifacts.tmpDir, name))).size > 0) return path.join(artifacts.tmpDir, name);
        }
        return undefined;
      }, 120_000, "the child's temporary artifact file", 2);
      expect(partial, `the child exited before it was killed: ${err}`).not.toBe('exited');
      proc.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      // Killed during the write, not after it: its file is still there, still partial.
      expect(out).toBe('saving\n');
      expect((await stat(partial)).size).toBeLessThan(LARGE * 8);

      if (embedded) db = reopened = await PgliteThreadDb.open(path.join(t.config.dataDir, 'registry'));
      const store = new CheckpointStore(db, artifacts);
      expect((await store.list('m', '1')).map((r) => r.id)).toEqual([first.id]);
      const restored = (await store.latest('m', '1'))!;
      expect(restored.row).toEqual(first);
      expect(new Float64Array(restored.bytes.buffer)).toEqual(previous);
      // Only whole artifacts under final names: the previous one.
      expect(await readdir(path.join(t.config.dataDir, 'artifacts', 'sha256'))).toEqual([first.sha256]);

      // What a start does with the partial file, then a save that completes.
      expect(await removeStaleTempFiles(artifacts.tmpDir)).toMatchObject({ files: 1 });
      const next = await store.save({ model: 'm', version: '1', state: 3, events: 20, replica: 'parent', watermarks: {} }, randomF64(1000, 8));
      expect((await store.latest('m', '1'))!.row.id).toBe(next.id);
    } finally {
      child.proc?.kill('SIGKILL');
      await reopened?.close();
      await t.cleanup();
    }
  });
});
