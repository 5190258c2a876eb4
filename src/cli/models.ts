/**
 * `sluice models register|list|show|versions|promote|rollback|audit`: the registry through the
 * admin API (--url, --key or SLUICE_API_KEY).
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { SluiceError } from '../errors.js';
import { checkName } from '../names.js';
import { MANIFEST_FILE } from '../repository/directory.js';
import { adminOptions, adminTarget, request } from './admin-client.js';
import { Progress } from './progress.js';

const CHUNK = 1 << 20;

function table(rows: Array<Record<string, unknown>>, cols: string[]): void {
  const cells = [cols, ...rows.map((r) => cols.map((c) => (r[c] === null || r[c] === undefined ? '-' : String(r[c]))))];
  const widths = cols.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  for (const r of cells) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

/** A version directory, or a model.json file beside its payload. */
async function readVersion(p: string): Promise<{ manifest: Record<string, unknown>; payload: Buffer }> {
  const manifestFile = (await stat(p)).isDirectory() ? path.join(p, MANIFEST_FILE) : p;
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as Record<string, unknown>;
  } catch {
    throw new SluiceError('MANIFEST_INVALID', `cannot read ${manifestFile} as JSON`);
  }
  const file = (manifest.payload as { file?: unknown } | undefined)?.file;
  if (typeof file !== 'string') throw new SluiceError('MANIFEST_INVALID', `${manifestFile} has no payload.file`);
  const payload = await readFile(path.join(path.dirname(manifestFile), path.basename(file)));
  return { manifest, payload };
}

export function addModelCommands(program: Command): void {
  const models = program.command('models').description('the model registry (admin API)');
  adminOptions(models.command('register <path>')
    .description('register a version from a directory (model.json + payload) or a model.json file')
    .option('--model <name>', 'model name (default: the manifest\'s)')
    .option('--version <v>', 'explicit version (default: the manifest\'s, unless --bump)')
    .option('--bump <part>', 'next semantic version: major, minor or patch')
    .option('--tags <a,b>', 'tags')
    .option('--notes <text>', 'notes')
    .option('--reason <text>', 'why (goes into the audit log)')
    .option('--metrics <file.json>', 'evaluation metrics')
    .option('--parent <version>', 'the version this one derives from'))
    .action(async (p: string, o: { url: string; key?: string; model?: string; version?: string; bump?: string; tags?: string; notes?: string; reason?: string; metrics?: string; parent?: string }) => {
      const { manifest, payload } = await readVersion(p);
      const name = o.model ?? (typeof manifest.name === 'string' ? manifest.name : undefined);
      if (!name) throw new SluiceError('INVALID_ARGUMENT', 'no model name: pass --model or set name in model.json');
      // The server's naming rule, checked here too so a bad name fails before a long upload.
      checkName(name, 'model name');
      if (o.version !== undefined) checkName(o.version, 'version');
      if (o.parent !== undefined) checkName(o.parent, 'parent version');
      if (o.bump) delete manifest.version;
      const head = Buffer.from(JSON.stringify({
        manifest: { ...manifest, name },
        version: o.version,
        bump: o.bump,
        tags: o.tags?.split(',').map((t) => t.trim()).filter(Boolean),
        notes: o.notes,
        reason: o.reason,
        metrics: o.metrics ? JSON.parse(await readFile(o.metrics, 'utf8')) : undefined,
        parent_version: o.parent,
      }));
      const chunks: Uint8Array[] = [head];
      for (let i = 0; i < payload.byteLength; i += CHUNK) chunks.push(payload.subarray(i, i + CHUNK));
      const progress = new Progress(`upload ${name}`);
      const v = (await request(adminTarget(o), 'POST', `/v1/admin/models/${encodeURIComponent(name)}/versions`, {
        chunks, progress, headers: { 'content-type': 'application/octet-stream', 'register-header-length': String(head.byteLength) },
      })) as { model: string; version: string; artifact: { sha256: string; size: number } };
      progress.done();
      console.log(`registered ${v.model}@${v.version} (${v.artifact.size} bytes, sha256 ${v.artifact.sha256}), stage development`);
    });

  adminOptions(models.command('list').description('models with their production and latest versions'))
    .action(async (o: { url: string; key?: string }) => {
      table((await request(adminTarget(o), 'GET', '/v1/admin/models')) as Array<Record<string, unknown>>, ['name', 'productionVersion', 'latestVersion', 'versionCount']);
    });

  adminOptions(models.command('show <model>').description('a model: versions, stages, production history'))
    .action(async (m: string, o: { url: string; key?: string }) => {
      checkName(m, 'model name');
      console.log(JSON.stringify(await request(adminTarget(o), 'GET', `/v1/admin/models/${encodeURIComponent(m)}`), null, 2));
    });

  adminOptions(models.command('versions <model>').description('a model\'s versions').option('--stage <stage>', 'only this stage'))
    .action(async (m: string, o: { url: string; key?: string; stage?: string }) => {
      checkName(m, 'model name');
      const q = o.stage ? `?stage=${encodeURIComponent(o.stage)}` : '';
      table((await request(adminTarget(o), 'GET', `/v1/admin/models/${encodeURIComponent(m)}/versions${q}`)) as Array<Record<string, unknown>>, ['version', 'stage', 'kind', 'createdBy', 'createdAt']);
    });

  adminOptions(models.command('promote <model> <version>').description('move a version to a stage (production by default)')
    .option('--stage <stage>', 'development, staging, production or archived', 'production').option('--reason <text>', 'why'))
    .action(async (m: string, v: string, o: { url: string; key?: string; stage: string; reason?: string }) => {
      checkName(m, 'model name');
      checkName(v, 'version');
      const r = (await request(adminTarget(o), 'POST', `/v1/admin/models/${encodeURIComponent(m)}/promote`, {
        chunks: [Buffer.from(JSON.stringify({ version: v, stage: o.stage, reason: o.reason }))], headers: { 'content-type': 'application/json' },
      })) as { changed: boolean; replacedProduction: string | null };
      console.log(r.changed ? `${m}@${v} is now ${o.stage}${r.replacedProduction ? ` (replacing ${r.replacedProduction})` : ''}` : `${m}@${v} was already ${o.stage}`);
    });

  adminOptions(models.command('rollback <model>').description('back to the previous production version, or --to a named one')
    .option('--to <version>', 'an earlier production version').option('--reason <text>', 'why'))
    .action(async (m: string, o: { url: string; key?: string; to?: string; reason?: string }) => {
      checkName(m, 'model name');
      if (o.to !== undefined) checkName(o.to, 'version');
      const r = (await request(adminTarget(o), 'POST', `/v1/admin/models/${encodeURIComponent(m)}/rollback`, {
        chunks: [Buffer.from(JSON.stringify({ to: o.to, reason: o.reason }))], headers: { 'content-type': 'application/json' },
      })) as { version: string; replacedProduction: string | null };
      console.log(`${m}@${r.version} is production again${r.replacedProduction ? ` (replacing ${r.replacedProduction})` : ''}`);
    });

  adminOptions(models.command('audit').description('the audit log, newest first').option('--model <name>', 'one model').option('--limit <n>', 'entries', '50'))
    .action(async (o: { url: string; key?: string; model?: string; limit: string }) => {
      if (o.model !== undefined) checkName(o.model, 'model name');
      const q = new URLSearchParams({ limit: o.limit, ...(o.model ? { model: o.model } : {}) });
      table((await request(adminTarget(o), 'GET', `/v1/admin/audit?${q}`)) as Array<Record<string, unknown>>, ['id', 'at', 'actor', 'action', 'model', 'fromVersion', 'toVersion', 'toStage', 'reason']);
    });
}
