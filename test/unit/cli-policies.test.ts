/**
 * `sluice policies evaluate` (src/cli/policies.ts): option parsing, the request body, the table,
 * and the request it sends (to a stand-in for the admin endpoint on 127.0.0.1, port 0; the real
 * route is tested with the server).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { addPolicyCommands, evaluateBody, evaluationTable, parsePolicyOption, parseTimeOption, type OpeReportJson } from '../../src/cli/policies.js';

const NOW = Date.UTC(2026, 4, 10, 12, 0, 0);
const HOUR = 3_600_000;

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SluiceError);
    return (e as SluiceError).code;
  }
  return 'no error';
}

describe('policies evaluate: options', () => {
  it('reads --policy', () => {
    expect(parsePolicyOption('uniform')).toBe('uniform');
    expect(parsePolicyOption('arm:0')).toEqual({ arm: 0 });
    expect(parsePolicyOption('arm:12')).toEqual({ arm: 12 });
    expect(parsePolicyOption('version:1.1.0')).toEqual({ version: '1.1.0' });
    for (const bad of ['', 'Uniform', 'arm:', 'arm:-1', 'arm:1.5', 'arm:x', 'version:', 'version:bad name', 'greedy', 'arm:99999999999999999999']) {
      expect(code(() => parsePolicyOption(bad)), bad).toBe('INVALID_ARGUMENT');
    }
  });

  it('reads times as durations back from now, ISO 8601 or ms since the epoch', () => {
    expect(parseTimeOption('24h', '--since', NOW)).toBe(NOW - 24 * HOUR);
    expect(parseTimeOption('7d', '--since', NOW)).toBe(NOW - 7 * 24 * HOUR);
    expect(parseTimeOption('90m', '--since', NOW)).toBe(NOW - 90 * 60_000);
    expect(parseTimeOption('30s', '--since', NOW)).toBe(NOW - 30_000);
    expect(parseTimeOption('1.5h', '--since', NOW)).toBe(NOW - 1.5 * HOUR);
    expect(parseTimeOption('2026-01-31', '--since', NOW)).toBe(Date.UTC(2026, 0, 31));
    expect(parseTimeOption('2026-01-31T12:30:00Z', '--since', NOW)).toBe(Date.UTC(2026, 0, 31, 12, 30));
    expect(parseTimeOption('1767225600000', '--since', NOW)).toBe(1767225600000);
    for (const bad of ['', 'yesterday', 'h', '-1h', '2026-13-45', '24 h', '1e12']) {
      expect(code(() => parseTimeOption(bad, '--since', NOW)), bad).toBe('INVALID_ARGUMENT');
    }
  });

  it('builds the body', () => {
    expect(evaluateBody({}, NOW)).toEqual({ policy: 'uniform' });
    expect(evaluateBody({ policy: 'arm:2', version: '1.0.0', since: '24h', until: '1h', level: '0.9' }, NOW)).toEqual({
      policy: { arm: 2 }, version: '1.0.0', since: NOW - 24 * HOUR, until: NOW - HOUR, level: 0.9,
    });
    expect(evaluateBody({ policy: 'version:2.0.0' }, NOW)).toEqual({ policy: { version: '2.0.0' } });
    expect(code(() => evaluateBody({ version: 'a b' }, NOW))).toBe('NAME_INVALID');
    expect(code(() => evaluateBody({ since: '1h', until: '2h' }, NOW))).toBe('INVALID_ARGUMENT');
    for (const level of ['0', '1', '95', 'x', '']) expect(code(() => evaluateBody({ level }, NOW)), level).toBe('INVALID_ARGUMENT');
  });
});

const REPORT: OpeReportJson = {
  n: 1234,
  policy: 'arm:1',
  level: 0.95,
  ips: { value: 0.72731, std_error: 0.10234, ci: [0.52673, 0.92789] },
  snips: { value: null, std_error: null, ci: null },
  dr: { value: 0.93831, std_error: 0.05, ci: [0.84031, 1.03631] },
  effective_sample_size: 9.1876,
  max_weight: 12.5,
  logged_value: 0.61234,
};

describe('policies evaluate: output', () => {
  it('prints a table, with - where an estimate is undefined', () => {
    expect(evaluationTable('bandit', '1.0.0', REPORT)).toEqual([
      'bandit version 1.0.0: policy arm:1 on 1,234 logged decisions',
      'estimator   value  std error      95% interval',
      'IPS        0.7273     0.1023  [0.5267, 0.9279]',
      'SNIPS           -          -                 -',
      'DR         0.9383       0.05   [0.8403, 1.036]',
      "logged policy's mean reward 0.6123; effective sample size 9.188 of 1,234; largest weight 12.5",
    ]);
  });
});

describe('policies evaluate: the request', () => {
  let server: http.Server;
  let url: string;
  const seen: Array<{ method: string; path: string; auth: string | undefined; type: string | undefined; body: unknown }> = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, path: req.url!, auth: req.headers.authorization, type: req.headers['content-type'], body: JSON.parse(text) });
        if (req.url!.includes('empty')) {
          res.writeHead(422, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'no logged bandit decisions', code: 'NO_LOGGED_EVENTS' }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(REPORT));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  async function run(args: string[]): Promise<string[]> {
    const program = new Command('sluice').enablePositionalOptions().exitOverride();
    addPolicyCommands(program);
    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((l: string) => void out.push(l));
    try {
      await program.parseAsync(['node', 'sluice', 'policies', 'evaluate', ...args, '--url', url]);
    } finally {
      log.mockRestore();
    }
    return out;
  }

  it('POSTs the body to the model\'s evaluate endpoint and prints the table or the JSON', async () => {
    const table = await run(['bandit', '--policy', 'version:2.0.0', '--version', '1.0.0', '--level', '0.9', '--key', 'k1']);
    expect(seen.at(-1)).toEqual({
      method: 'POST', path: '/v1/admin/models/bandit/evaluate', auth: 'Bearer k1', type: 'application/json',
      body: { policy: { version: '2.0.0' }, version: '1.0.0', level: 0.9 },
    });
    expect(table[0]).toBe('bandit version 1.0.0: policy arm:1 on 1,234 logged decisions');
    expect(table).toHaveLength(6);
    const json = await run(['bandit', '--json']);
    expect(seen.at(-1)!.body).toEqual({ policy: 'uniform' });
    expect(JSON.parse(json.join('\n'))).toEqual(REPORT);
  });

  it('reports the server\'s error code', async () => {
    await expect(run(['empty'])).rejects.toMatchObject({ code: 'NO_LOGGED_EVENTS' });
  });

  it('refuses bad options before sending anything', async () => {
    const before = seen.length;
    await expect(run(['bandit', '--policy', 'arm:x'])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(run(['bad name'])).rejects.toMatchObject({ code: 'NAME_INVALID' });
    expect(seen.length).toBe(before);
  });
});
