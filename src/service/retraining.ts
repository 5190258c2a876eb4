/**
 * The retraining operations of the admin service (issue #15): ask for a model to be retrained,
 * list the requests, set and clear a model's retraining schedule. Requests are recorded and
 * sent by src/control/retraining (the same path alerts and schedules take).
 */
import { SluiceError } from '../errors.js';
import { checkName } from '../names.js';
import type { Db } from '../registry/db.js';
import { objectWith, optionalText, own } from '../strict-json.js';
import { clearSchedule, listRequests, requestJson, setSchedule } from '../control/retraining/store.js';
import type { Retraining } from '../control/retraining/retraining.js';

export interface RetrainingService {
  requestRetraining(model: string, body: unknown, actor: string): Promise<object>;
  listRetraining(model?: string): Promise<object[]>;
  setRetrainingSchedule(model: string, body: unknown, actor: string): Promise<object>;
  clearRetrainingSchedule(model: string): Promise<object>;
}

export const RETRAINING_OPERATIONS = ['requestRetraining', 'listRetraining', 'setRetrainingSchedule', 'clearRetrainingSchedule'] as const satisfies ReadonlyArray<keyof RetrainingService>;

function invalid(message: string): SluiceError {
  return new SluiceError('INVALID_ARGUMENT', message);
}

export function retrainingService(db: Db, retraining: Retraining | undefined): RetrainingService {
  const need = (): Retraining => {
    if (!retraining) throw new SluiceError('INTERNAL', 'retraining is not set up on this server');
    return retraining;
  };
  return {
    async requestRetraining(model, body, actor) {
      const o = body === undefined ? {} : objectWith(body, 'the request body', ['reason', 'version'], invalid);
      const version = optionalText(o, 'version', invalid);
      if (version !== undefined) checkName(version, 'version');
      const r = await need().request({ model, ...(version !== undefined ? { version } : {}), trigger: 'manual', reason: optionalText(o, 'reason', invalid) ?? 'asked by hand', actor });
      return requestJson(r!);
    },
    listRetraining: async (model) => (await listRequests(db, model)).map(requestJson),
    async setRetrainingSchedule(model, body, actor) {
      const o = objectWith(body ?? {}, 'the request body', ['every_s'], invalid);
      const every = own(o, 'every_s');
      if (typeof every !== 'number' || !Number.isInteger(every) || every < 60 || every > 366 * 86400) throw invalid('every_s must be an integer number of seconds in [60, 31622400]');
      const s = await setSchedule(db, model, every, actor);
      return { model: s.model, every_s: s.everyS, next_at: s.nextAt.toISOString(), updated_by: s.updatedBy };
    },
    clearRetrainingSchedule: async (model) => ({ model, cleared: await clearSchedule(db, model) }),
  };
}
