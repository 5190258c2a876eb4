/**
 * A bandit version as a candidate policy for off-policy evaluation (src/learn/ope.ts): its arm
 * probabilities for each logged context, as its serving policy would decide from `state`.
 */
import { SluiceError } from '../../errors.js';
import type { Manifest } from '../../model/manifest.js';
import type { CandidatePolicy } from '../ope.js';
import { isBanditKind, parseBanditConfig } from './config.js';
import { BanditPolicy, banditRng } from './policy.js';

/** OPE_INVALID unless `m` is a bandit. */
export function checkCandidate(m: Manifest): void {
  if (!isBanditKind(m.kind)) throw new SluiceError('OPE_INVALID', `${m.name}@${m.version} is a ${m.kind} model, not a bandit`);
}

export function banditCandidate(m: Manifest, state: Float64Array): CandidatePolicy {
  checkCandidate(m);
  const config = parseBanditConfig(m);
  const policy = new BanditPolicy(config, banditRng(config), 1);
  const empty = new Float32Array(config.dims);
  return {
    arms: config.arms,
    name: `version:${m.version}`,
    probabilities(context, out) {
      const x = context ?? empty;
      if (x.length !== config.dims) throw new SluiceError('OPE_INVALID', `${m.name}@${m.version} takes ${config.dims} context features; a logged decision has ${x.length}`);
      policy.probabilities(state, x, out);
    },
  };
}
