/**
 * `linucb`, `thompson` and `epsilon-greedy` models: each row of contexts gets an arm, its
 * propensity and per-arm scores (src/learn/bandit/policy.ts), computed from the state the
 * online learner last published in the version's state cell. The payload is the version's
 * description of its arms (`{"arms": ["name", ...]}`, optional); the state starts as the prior.
 */
import { SluiceError } from '../../errors.js';
import type { Manifest } from '../../model/manifest.js';
import { parseBanditConfig } from '../../learn/bandit/config.js';
import { initialState, layoutOf } from '../../learn/bandit/layout.js';
import { BanditPolicy, banditRng } from '../../learn/bandit/policy.js';
import { StateCell } from '../../learn/state-cell.js';
import type { BatchTensor, LearnedInfo, Runtime } from './types.js';

/** Checks the payload: JSON, an object, `arms` (if present) K distinct non-empty strings. */
export function parseBanditPayload(m: Manifest, payload: Uint8Array, arms: number): string[] {
  let doc: unknown;
  try {
    doc = payload.byteLength === 0 ? {} : JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: payload is not valid JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: payload must be a JSON object`);
  const names = (doc as { arms?: unknown }).arms;
  if (names === undefined) return Array.from({ length: arms }, (_, i) => `arm-${i}`);
  if (!Array.isArray(names) || names.length !== arms || names.some((n) => typeof n !== 'string' || n === '') || new Set(names).size !== arms) {
    throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: payload arms must be ${arms} distinct non-empty names`);
  }
  return names as string[];
}

/** A cell holding `m`'s initial state, for a load that was given none (validation, tests). */
export function initialCell(m: Manifest): StateCell {
  const c = parseBanditConfig(m);
  const cell = new StateCell(layoutOf(c).length);
  cell.publish(initialState(c), 0, 0);
  return cell;
}

export function loadBandit(m: Manifest, payload: Uint8Array, learned: SharedArrayBuffer | undefined): Runtime {
  let config;
  try {
    config = parseBanditConfig(m);
  } catch (e) {
    throw new SluiceError('MODEL_LOAD_FAILED', (e as Error).message, { cause: e });
  }
  parseBanditPayload(m, payload, config.arms);
  const cell = learned ? new StateCell(learned) : initialCell(m);
  if (cell.length !== layoutOf(config).length) throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: the state cell holds ${cell.length} values, the model needs ${layoutOf(config).length}`);
  const maxRows = Math.max(1, m.batching.maxBatchSize);
  const policy = new BanditPolicy(config, banditRng(config), maxRows);
  const k = config.arms;
  const action = new Int32Array(maxRows);
  const propensity = new Float32Array(maxRows);
  const scores = new Float32Array(maxRows * k);
  const info: LearnedInfo = { lastState: 0, decides: 'arm' };
  return {
    manifest: m,
    learned: info,
    run(inputs: readonly BatchTensor[], rows: number): BatchTensor[] {
      const x = inputs[0]!.data as Float32Array;
      const out = rows <= maxRows ? { action, propensity, scores } : { action: new Int32Array(rows), propensity: new Float32Array(rows), scores: new Float32Array(rows * k) };
      for (;;) {
        const view = cell.read();
        // A publication is its slot and that slot's sequence number: the pair never recurs
        // with other contents, so the policy may keep what it derived from it (serving form).
        policy.decide(view.data, x, rows, out, view.state, view.seq * 2 + view.slot);
        // Torn read (the learner wrote this slot meanwhile, twice published): decide again.
        if (cell.stable(view)) {
          info.lastState = view.state;
          break;
        }
      }
      return [
        { data: out.action.slice(0, rows), shape: [rows, 1] },
        { data: out.propensity.slice(0, rows), shape: [rows, 1] },
        { data: out.scores.slice(0, rows * k), shape: [rows, k] },
      ];
    },
    async dispose() {},
  };
}
