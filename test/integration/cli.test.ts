import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { startGrpc } from '../helpers/grpc.js';
import { startServer, type TestServer } from '../helpers/http.js';
import { logisticVersion, startFull, type FullServer } from '../helpers/server.js';
import { version } from '../../src/serve.js';
import { mulberry32 } from '../helpers/random.js';
import { demoWeights, logistic } from '../helpers/repo.js';

const run = promisify(execFile);
const CLI = path.join(projectRoot, 'dist/src/cli/index.js');
const w = demoWeights();

/** Runs the CLI under GNU time; returns exit code, output and peak resident memory (kB). */
async function sluice(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string; maxRssKb: number }> {
  try {
    const r = await run('/usr/bin/time', ['-f', 'MAXRSS %M', process.execPath, CLI, ...args], { env: { ...process.env, SLUICE_LOG_LEVEL: 'silent', ...env }, maxBuffer: 1 << 26 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr, maxRssKb: Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1]) };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr, maxRssKb: Number(/MAXRSS (\d+)/.exec(x.stderr)?.[1]) };
  }
}

describe('sluice command line', () => {
  let dir: string;
  let rows: number[][];
  let s: TestServer;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-cli-'));
    const r = mulberry32(5);
    rows = Array.from({ length: 20_000 }, () => Array.from({ length: 100 }, () => Math.round((r() * 2 - 1) * 1e4) / 1e4));
    writeFileSync(path.join(dir, 'rows.csv'), ['f' + w.map((_, i) => i).join(',f'), ...rows.map((x) => x.join(','))].join('\n') + '\n');
    writeFileSync(path.join(dir, 'rows.jsonl'), rows.slice(0, 5000).map((x) => JSON.stringify(x)).join('\n') + '\n');
    s = await startServer({ workers: 1 });
  });
  afterAll(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  const expectOutputs = (file: string, n: number) => {
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(n);
    lines.forEach((l, i) => expect(JSON.parse(l).probability).toBeCloseTo(logistic(rows[i]!, w, 0.25), 6));
  };

  it('--help lists the commands', async () => {
    const r = await sluice(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/serve[\s\S]*predict[\s\S]*loadtest/);
  });

  it('predict in-process: a 20,000-row CSV gives 20,000 correct outputs in order, in bounded memory', async () => {
    const out = path.join(dir, 'out.jsonl');
    const r = await sluice(['predict', '--model', 'demo-logistic', '--input', path.join(dir, 'rows.csv'), '--output', out, '--batch', '512']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^predicted 20,000 rows with demo-logistic@1 in [\d.]+ s \([\d,]+ rows\/s\) -> /);
    expectOutputs(out, 20_000);
    expect(r.maxRssKb).toBeLessThan(300 * 1024);
  });

  it('predict against a server (--url, WebSocket stream) from JSON Lines', async () => {
    const out = path.join(dir, 'remote.jsonl');
    const r = await sluice(['predict', '--model', 'demo-logistic', '--url', s.url, '--input', path.join(dir, 'rows.jsonl'), '--output', out, '--batch', '700', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expectOutputs(out, 5000);
  });

  it('a bad row fails with one line naming the line, exit code 1', async () => {
    const bad = path.join(dir, 'bad.jsonl');
    writeFileSync(bad, [JSON.stringify(rows[0]), JSON.stringify(rows[1]!.slice(0, 99)), JSON.stringify(rows[2])].join('\n'));
    const r = await sluice(['predict', '--model', 'demo-logistic', '--input', bad, '--output', path.join(dir, 'x.jsonl'), '--quiet']);
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('sluice:'));
    expect(lines).toEqual(['sluice: line 2: input features needs 100 values, got 99 (SHAPE_MISMATCH)']);
    const huge = path.join(dir, 'huge.jsonl');
    writeFileSync(huge, `[1e400,${rows[0]!.slice(1).join(',')}]\n`);
    const r2 = await sluice(['predict', '--model', 'demo-logistic', '--input', huge, '--output', path.join(dir, 'y.jsonl'), '--quiet']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('line 1: input features element 0 (Infinity) is not a valid FP32 value (INVALID_TENSOR_VALUE)');
  });

  it('loadtest over gRPC unary and gRPC streams', async () => {
    const { server, address, client } = await startGrpc(s.engine);
    try {
      for (const protocol of ['grpc', 'grpc-stream']) {
        const report = path.join(dir, `${protocol}.json`);
        const r = await sluice(['loadtest', '--url', address, '--protocol', protocol, '--model', 'demo-logistic', '--rate', '300', '--duration', '1', '--report', report, '--quiet']);
        expect(r.code, r.stderr).toBe(0);
        const doc = JSON.parse(readFileSync(report, 'utf8'));
        expect(doc).toMatchObject({ sent: 300, answered: 300, errorCount: 0 });
      }
    } finally {
      client.close();
      await server.close(500);
    }
  });
});

describe('sluice models (against a whole server)', () => {
  let full: FullServer;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-cli-models-'));
    const { manifest, payload } = logisticVersion(2);
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify(manifest));
    writeFileSync(path.join(dir, 'weights.json'), payload);
    full = await startFull();
  });
  afterAll(async () => {
    await full?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('`models register --version` is the subcommand\'s option (not the program\'s --version): it registers that version', async () => {
    const r = await sluice(['models', 'register', dir, '--version', '7.7.7', '--url', full.url, '--key', full.adminKey]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^registered demo-logistic@7\.7\.7 \(/);
    expect((await full.registry.registry.getVersion('demo-logistic', '7.7.7')).version).toBe('7.7.7');
    // The program's own --version still works before any subcommand.
    const v = await sluice(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(version);
  });
});
