/**
 * The logger (src/log.ts, pino underneath) writes the line shape the launchers and tests read:
 * one JSON object per line on stderr with `level` by name, `t` an ISO time, `msg` and the data's
 * fields; SLUICE_LOG_LEVEL filters; fields that name a credential are censored; an error's stack
 * only at debug. Run in a child process, as the level is read once at start (built dist/).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hidesInfo } from '../../src/log.js';

const logModule = path.resolve('dist/src/log.js');

function run(level: string | undefined): Array<Record<string, unknown>> {
  const script = `
    const { log, errorFields } = await import(${JSON.stringify(logModule)});
    log.debug('debug line', { n: 1 });
    log.info('info line');
    log.warn('warn line', { model: 'm', secret: 'sk_abc', nested: { authorization: 'Bearer x' } });
    log.error('error line', errorFields(Object.assign(new Error('boom'), { code: 'SOME_CODE' })));
    process.stdout.write('stdout stays clean');
  `;
  const env = { ...process.env, SLUICE_LOG_LEVEL: level };
  if (level === undefined) delete env.SLUICE_LOG_LEVEL;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('stdout stays clean');
  return r.stderr.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('log', () => {
  it('writes one JSON object per line with level, t, msg and the data; info by default', () => {
    const lines = run(undefined);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([['info', 'info line'], ['warn', 'warn line'], ['error', 'error line']]);
    for (const l of lines) expect(new Date(l.t as string).toISOString()).toBe(l.t);
    expect(lines[1]).toMatchObject({ model: 'm' });
    expect(lines[2]).toMatchObject({ error: 'boom', code: 'SOME_CODE' });
    expect(lines[2]!.stack).toBeUndefined();
  });

  it('censors credential fields, at the top level and one object down', () => {
    const warn = run('info').find((l) => l.msg === 'warn line')!;
    expect(warn.secret).toBe('[redacted]');
    expect((warn.nested as Record<string, unknown>).authorization).toBe('[redacted]');
    expect(JSON.stringify(warn)).not.toContain('sk_abc');
  });

  it('filters by SLUICE_LOG_LEVEL: debug adds the debug line and stacks, error keeps only errors, silent nothing', () => {
    const debug = run('debug');
    expect(debug.map((l) => l.level)).toEqual(['debug', 'info', 'warn', 'error']);
    expect(debug[3]!.stack).toContain('Error: boom');
    expect(run('error').map((l) => l.level)).toEqual(['error']);
    expect(run('silent')).toEqual([]);
    expect(run('nonsense').map((l) => l.level)).toEqual(['info', 'warn', 'error']);
  });

  it('says which levels hide the info lines (the launchers wait for one), as the filter above applies them', () => {
    expect(['debug', 'info', 'warn', 'error', 'silent', 'nonsense'].map(hidesInfo)).toEqual([false, false, true, true, true, false]);
  });
});
