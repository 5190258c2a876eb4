/**
 * The data directory's filesystem fills up (a small tmpfs mounted as SLUICE_DATA_DIR, then
 * filled). Expected: an upload (admin register, written to the local artifact store) fails with
 * a coded error, not 500 INTERNAL and not a crash; inference serves throughout; once space is
 * freed the upload succeeds and the new version can be promoted and served; no partial
 * (temporary) artifact files are left behind.
 */
import { execFile } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { inferRequests, inputs, logisticUpload, writeLogistic } from '../fixtures.js';
import { ok, tally, tallyFigures } from '../load.js';
import { check, memoryCheck, type Scenario } from '../scenario.js';

const run = promisify(execFile);
const FS_MB = 160;
const UPLOAD_BYTES = 4 << 20;

/** Fills the filesystem of `file` until it refuses another byte. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20, 1);
  let written = 0;
  try {
    for (;;) {
      try {
        written += writeSync(fd, chunk);
      } catch {
        // Top up with small writes until not one more fits.
        const small = Buffer.alloc(4096, 1);
        for (;;) {
          try {
            written += writeSync(fd, small);
          } catch {
            return written;
          }
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  return out;
}

export const diskFull: Scenario = {
  name: 'disk-full',
  description: 'the data directory\'s filesystem is full: uploads fail with a coded error, serving continues, works again once freed, no partial files',
  needs: ['root'],
  fast: false,
  async run(ctx) {
    const base = await ctx.tmpDir('sluice-chaos-disk-');
    const dataDir = path.join(base, 'data');
    await mkdir(dataDir);
    await run('mount', ['-t', 'tmpfs', '-o', `size=${FS_MB}M`, 'tmpfs', dataDir]);
    ctx.defer(() => run('umount', ['-l', dataDir]));
    const repo = await ctx.tmpDir();
    await writeLogistic(repo, 'disk', 1);
    const s = await ctx.sluice({ repo, dataDir });
    const rssBefore = await s.rssMb();
    const t0 = ctx.now();
    const load = ctx.load({ url: s.http, model: 'disk', rate: 200, durationS: 10, requests: inferRequests(s.http, 'disk', 'features', inputs(16)) });
    await ctx.sleep(2_000);
    const fullAt = ctx.now();
    const filler = path.join(dataDir, 'chaos-filler');
    const filled = fill(filler);
    const upload = logisticUpload('disk', 2, UPLOAD_BYTES);
    const during = await ctx.admin(s.http, 'POST', '/v1/admin/models/disk/versions', upload.body, upload.headers);
    const tmpDuring = (await listFiles(dataDir)).filter((f) => path.basename(f).startsWith('.tmp-'));
    await ctx.sleep(1_000);
    await rm(filler);
    const freedAt = ctx.now();
    const after = await ctx.admin(s.http, 'POST', '/v1/admin/models/disk/versions', upload.body, upload.headers);
    const promote = await ctx.admin(s.http, 'POST', '/v1/admin/models/disk/promote', { version: '2', reason: 'chaos: after the disk was freed' });
    let servedMs = NaN;
    try {
      servedMs = (await ctx.until('version 2 to serve', async () => ((await ctx.infer(s.http, 'disk', 'features', inputs(1)[0]!)).body?.model_version === '2' ? true : undefined), 10_000)).ms;
    } catch { /* reported below */ }
    const { answers } = await load.done;
    const rssAfter = await s.rssMb();
    const leftovers = (await listFiles(dataDir)).filter((f) => path.basename(f).startsWith('.tmp-'));
    const windows = tally(answers, [
      { name: 'before the disk filled', from: t0, to: fullAt },
      { name: 'while full', from: fullAt, to: freedAt },
      { name: 'after freeing', from: freedAt, to: Infinity },
    ]);
    const failed = answers.filter((a) => !ok(a)).length;
    const code = during.body?.code;
    return {
      checks: [
        check('upload on a full disk fails with a coded error (not 500 INTERNAL)', during.status >= 400 && during.status !== 500 && typeof code === 'string' && code !== 'INTERNAL',
          `${during.status} ${code ?? ''}: ${during.body?.error ?? JSON.stringify(during.body)}`),
        check('the server stayed up', s.proc.child.exitCode === null, `exit code ${s.proc.child.exitCode}`),
        check('0 failed inference requests, before, while full and after', failed === 0, `${failed} failed of ${answers.length}`),
        check('after freeing space the upload succeeds, and the version can be promoted and served', after.status === 200 && promote.status === 200 && Number.isFinite(servedMs),
          `upload ${after.status} ${after.body?.code ?? ''}, promote ${promote.status} ${promote.body?.code ?? ''}, served after ${servedMs.toFixed(0)} ms`),
        check('no partial artifact files left (after the failure, and at the end)', tmpDuring.length === 0 && leftovers.length === 0,
          [...tmpDuring, ...leftovers].map((f) => path.relative(dataDir, f)).join(', ') || 'none'),
        memoryCheck('sluice', rssBefore, rssAfter),
      ],
      figures: {
        ...tallyFigures('requests', windows),
        'filesystem': `${FS_MB} MB tmpfs, filled with ${(filled / 1048576).toFixed(1)} MB`,
        'upload while full': `${during.status} ${code ?? ''} in ${during.ms.toFixed(0)} ms`,
        'RSS before/after': `${rssBefore.toFixed(0)} / ${rssAfter.toFixed(0)} MB`,
      },
    };
  },
};
