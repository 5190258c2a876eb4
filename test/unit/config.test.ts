import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';

describe('configuration', () => {
  it('has defaults, reads SLUICE_* variables, and is frozen', () => {
    const c = loadConfig({}, { SLUICE_WORKERS: '3', SLUICE_MODELS: 'a, b', SLUICE_ALLOW_FIXTURE_MODELS: 'yes' });
    expect(c.workers).toBe(3);
    expect(c.startupModels).toEqual(['a', 'b']);
    expect(c.allowFixtureModels).toBe(true);
    expect(c.arenaMb).toBe(64);
    expect(c.feedbackConcurrency).toBe(2);
    expect(loadConfig({}, { SLUICE_FEEDBACK_CONCURRENCY: '1' }).feedbackConcurrency).toBe(1);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('lets programmatic overrides win over the environment', () => {
    expect(loadConfig({ workers: 0 }, { SLUICE_WORKERS: '3' }).workers).toBe(0);
  });

  it.each([
    ['SLUICE_WORKERS', 'many'],
    ['SLUICE_WORKERS', '-1'],
    ['SLUICE_ARENA_MB', '0'],
    ['SLUICE_ALLOW_FIXTURE_MODELS', 'maybe'],
    ['SLUICE_MODELS', 'a,../b'],
    ['SLUICE_FEEDBACK_CONCURRENCY', '0'],
  ])('refuses %s=%s with CONFIG_INVALID naming the variable', (key, value) => {
    expect(() => loadConfig({}, { [key]: value })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(key) }));
  });

  it('reads alert webhooks as a comma list of http(s) URLs, never echoing a bad one (they carry tokens)', () => {
    const c = loadConfig({}, { SLUICE_ALERT_WEBHOOKS: ' https://hooks.example/T1/secret , http://127.0.0.1:9/x,', SLUICE_ALERT_INTERVAL_MS: '250' });
    expect(c.alertWebhooks).toEqual(['https://hooks.example/T1/secret', 'http://127.0.0.1:9/x']);
    expect(c.alertIntervalMs).toBe(250);
    expect(loadConfig({}, {}).alertWebhooks).toEqual([]);
    for (const bad of ['ftp://x/token123', 'not a url token123']) {
      let message = '';
      try {
        loadConfig({}, { SLUICE_ALERT_WEBHOOKS: bad });
      } catch (e) {
        expect((e as { code: string }).code).toBe('CONFIG_INVALID');
        message = (e as Error).message;
      }
      expect(message).toMatch(/^SLUICE_ALERT_WEBHOOKS: /);
      expect(message).not.toContain('token123');
    }
  });
});
