/**
 * POST /v1/feedback through a whole server (registry on PGlite, two I/O threads: a request on
 * the worker thread is forwarded to the main thread's intake): the key is checked before the
 * body (401 without, 403 with a predict-only key), malformed JSON, a batch over the limit, a
 * body over its bound, and each outcome with its status; single events and batches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decision } from '../learn/helpers.js';
import { admin, startFull, type FullServer } from '../helpers/server.js';

describe('POST /v1/feedback', () => {
  let s: FullServer;
  let feedbackKey: string;
  let predictKey: string;

  beforeAll(async () => {
    s = await startFull({ authMode: 'always', feedbackMaxBatch: 5, ioThreads: 2 });
    feedbackKey = (await admin(s, s.adminKey, 'POST', '/v1/admin/keys', { name: 'fb', scopes: ['feedback'] })).json.secret;
    predictKey = (await admin(s, s.adminKey, 'POST', '/v1/admin/keys', { name: 'pr', scopes: ['predict'] })).json.secret;
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  /** `key` null: no key at all. */
  const post = (body: unknown, key: string | null = feedbackKey, headers: Record<string, string> = {}) =>
    admin(s, key ?? undefined, 'POST', '/v1/feedback', typeof body === 'string' ? new Uint8Array(Buffer.from(body)) : body, { 'content-type': 'application/json', ...headers });

  it('needs a key with the feedback scope, checked before the body', async () => {
    const none = await post({ event_id: 'e', reward: 1 }, null);
    expect(none.status, JSON.stringify(none.json)).toBe(401);
    expect(none.json.code).toBe('UNAUTHENTICATED');
    const wrong = await post({ event_id: 'e', reward: 1 }, predictKey);
    expect(wrong.status).toBe(403);
    expect(wrong.json.code).toBe('PERMISSION_DENIED');
    // Refused on its headers: a body far over the bound is never read (401, not 413).
    const unread = await post({ events: [{ event_id: 'e', reward: 1, pad: 'x'.repeat(200_000) }] }, null);
    expect(unread.status).toBe(401);
    // The admin scope includes feedback.
    expect((await post({ event_id: 'e', reward: 1 }, s.adminKey)).json.code).toBe('EVENT_NOT_FOUND');
  });

  it('refuses malformed JSON, a batch over the limit, a body over its bound and a wrong content type', async () => {
    const bad = await post('{"event_id": "e", "reward": ');
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe('MALFORMED_REQUEST');
    const events = Array.from({ length: 6 }, (_, i) => ({ event_id: `e${i}`, reward: 1 }));
    const big = await post({ events });
    expect(big.status).toBe(400);
    expect(big.json.code).toBe('FEEDBACK_BATCH_TOO_LARGE');
    const huge = await post({ events: [{ event_id: 'e', reward: 1, pad: 'x'.repeat(200_000) }] });
    expect(huge.status).toBe(413);
    expect(huge.json.code).toBe('PAYLOAD_TOO_LARGE');
    const type = await post({ event_id: 'e', reward: 1 }, feedbackKey, { 'content-type': 'text/plain' });
    expect(type.status).toBe(415);
    const notObject = await post('[1, 2]');
    expect(notObject.status).toBe(400);
    expect(notObject.json.code).toBe('FEEDBACK_INVALID');
  });

  it('answers each single event with its status and each batch item with its outcome', async () => {
    const d = decision();
    const late = decision({ at: Date.now() - 8 * 24 * 3_600_000 });
    s.decisions.offer(d);
    s.decisions.offer(late);
    await s.decisions.flush();
    // Several requests: both I/O threads answer some (the kernel spreads connections).
    const first = await post({ event_id: d.eventId, reward: 1.5, unit_id: 'u' });
    expect(first).toEqual({ status: 200, json: { event_id: d.eventId, status: 'accepted' } });
    for (let i = 0; i < 4; i++) expect(await post({ event_id: d.eventId, reward: 1.5 })).toEqual({ status: 200, json: { event_id: d.eventId, status: 'duplicate' } });
    expect(await post({ event_id: 'nope', reward: 1 })).toMatchObject({ status: 404, json: { code: 'EVENT_NOT_FOUND' } });
    expect(await post({ event_id: late.eventId, reward: 1 })).toMatchObject({ status: 422, json: { code: 'FEEDBACK_TOO_LATE' } });
    expect(await post({ event_id: 'x', reward: 'high' })).toMatchObject({ status: 400, json: { code: 'FEEDBACK_INVALID' } });
    expect(await post('{"event_id": "x", "reward": 1e999}')).toMatchObject({ status: 400, json: { code: 'FEEDBACK_INVALID' } });
    const d2 = decision();
    s.decisions.offer(d2);
    const batch = await post({ events: [{ event_id: d2.eventId, reward: 0 }, { event_id: d.eventId, reward: 1 }, { event_id: 'nope', reward: 1 }, { reward: 1 }, { event_id: 'y', reward: null }] });
    expect(batch.status).toBe(200);
    expect(batch.json.results).toEqual([
      { event_id: d2.eventId, status: 'accepted' },
      { event_id: d.eventId, status: 'duplicate' },
      { event_id: 'nope', error: { code: 'EVENT_NOT_FOUND', message: expect.any(String) } },
      { event_id: null, error: { code: 'FEEDBACK_INVALID', message: expect.any(String) } },
      { event_id: 'y', error: { code: 'FEEDBACK_INVALID', message: expect.any(String) } },
    ]);
    const rows = await s.registry.db.query<{ n: number }>('SELECT count(*)::int AS n FROM feedback_events WHERE event_id IN ($1, $2)', [d.eventId, d2.eventId]);
    expect(rows[0]!.n).toBe(2);
    expect(s.feedback.stats.accepted).toBe(2);
  });
});
