/**
 * `npm run bench [-- kernels dispatch swap handoff http predict grpc streams threads-bare threads overload metrics-merge routing routing-pick feedback bandits bandit-cpu learn experiments windows rollout drift dashboard startup]`: runs the selected
 * benchmarks (all by default) and prints their figures. Each one that computes answers checks
 * them (against demo-logistic's formula, or the native kernels against JavaScript) before it
 * times anything; swap also checks every answer during the swaps, and predict the timed run's
 * output. handoff times an echo: nothing to check.
 */
import { runDispatch } from './dispatch.js';
import { runFeedback } from './feedback.js';
import { runGrpc } from './grpc.js';
import { runHandoff } from './handoff.js';
import { runHttp } from './http.js';
import { runKernels } from './kernels.js';
import { runMetricsMerge } from './metrics-merge.js';
import { runOverload } from './overload.js';
import { runPredict } from './predict.js';
import { runRoutingPick } from './routing-pick.js';
import { runStreams } from './streams.js';
import { runSwap } from './swap.js';
import { runRouting } from './routing.js';
import { runThreads } from './threads.js';
import { runThreadsBare } from './threads-bare.js';
import { runBandits } from './bandits.js';
import { runBanditCpu } from './bandit-cpu.js';
import { runLearn } from './learn.js';
import { runExperiments } from './experiments.js';
import { runRollout } from './rollout.js';
import { runWindows } from './windows.js';
import { runDrift } from './drift.js';
import { runDashboard } from './dashboard.js';
import { runStartup } from './startup.js';

const all: Record<string, () => unknown> = {
  kernels: runKernels,
  dispatch: runDispatch,
  swap: runSwap,
  handoff: runHandoff,
  http: runHttp,
  predict: runPredict,
  grpc: runGrpc,
  streams: runStreams,
  'threads-bare': runThreadsBare,
  threads: runThreads,
  overload: runOverload,
  'metrics-merge': runMetricsMerge,
  routing: runRouting,
  feedback: runFeedback,
  'routing-pick': runRoutingPick,
  bandits: runBandits,
  'bandit-cpu': runBanditCpu,
  learn: runLearn,
  experiments: runExperiments,
  windows: runWindows,
  rollout: runRollout,
  drift: runDrift,
  dashboard: runDashboard,
  startup: runStartup,
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : Object.keys(all);
for (const n of names) {
  const fn = all[n];
  if (!fn) {
    console.error(`unknown benchmark ${n}; choose from ${Object.keys(all).join(', ')}`);
    process.exit(2);
  }
  await fn();
}
