/**
 * `sluice deploy canary|blue-green|shadow|status|pause|resume|abort|promote`: deployments
 * through the admin API `/v1/admin/deployments` (--url, --key or SLUICE_API_KEY, as `sluice
 * route`). Text by default, the server's answer as it is with `--json`.
 *
 * The options become the definition's JSON (src/control/deployments/spec.ts). Each number is
 * read strictly here (a typo such as `--steps 1,5,,100` or `--alpha 5%` is one line naming the
 * option, exit code 1, nothing sent); what the numbers must be (steps increasing to 100, an
 * alpha below 0.5, ...) is the server's rule, and its DEPLOYMENT_INVALID message is printed as is.
 */
import type { Command } from 'commander';
import { SluiceError } from '../errors.js';
import { adminOptions, adminTarget, request, type AdminTarget } from './admin-client.js';
import {
  actedLine, createdLine, deploymentLines, deploymentListLines,
  type DeploymentEventJson, type DeploymentJson,
} from './deploy-tables.js';

const BASE = '/v1/admin/deployments';

interface Target {
  url: string;
  key?: string;
}

/** The options of the create commands, as commander hands them (numbers still text). */
export interface CreateOptions {
  stable?: string;
  autoPromote?: boolean;
  windowS?: string;
  maxErrorIncrease?: string;
  maxP99Ratio?: string;
  alpha?: string;
  minRequests?: string;
  maxPredictionKs?: string;
  minPredictions?: string;
  confirmS?: string;
  steps?: string;
  stepMinS?: string;
  stepMinRequests?: string;
  bakeS?: string;
  fraction?: string;
  durationS?: string;
  minAgreement?: string;
  maxErrorRate?: string;
  minCompared?: string;
}

export type CreateKind = 'canary' | 'blue-green' | 'shadow';

function bad(message: string): SluiceError {
  return new SluiceError('INVALID_ARGUMENT', message);
}

// A decimal number as JSON writes one (also .5, 1., 1e3): Number() alone takes '', ' ', '0x10' and 'Infinity'.
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** `text` as a finite number; INVALID_ARGUMENT naming `flag` otherwise. */
export function parseNumber(flag: string, text: string): number {
  const n = DECIMAL.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(n)) throw bad(`${flag} ${JSON.stringify(text)}: write a number, e.g. ${flag} 30`);
  return n;
}

/** `--steps 1,5,25,50,100` as [1, 5, 25, 50, 100] (percentages; their order is the server's rule). */
export function parseSteps(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (!parts.every((p) => DECIMAL.test(p) && Number.isFinite(Number(p)))) {
    throw bad(`--steps ${JSON.stringify(text)}: write percentages separated by commas, e.g. --steps 1,5,25,50,100`);
  }
  return parts.map(Number);
}

/**
 * The definition the create command sends: the options given, and nothing for the others (the
 * server's defaults apply). Shadow reads --max-p99-ratio as its rule's (the shadow's p99 over
 * the caller's): a shadow is judged by its rule, not by the canary checks.
 */
export function deploymentBody(kind: CreateKind, model: string, candidate: string, o: CreateOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { model, kind, candidate };
  if (o.stable !== undefined) body.stable = o.stable;
  if (o.autoPromote === false) body.auto_promote = false;
  const put = (into: Record<string, unknown>, field: string, flag: string, text: string | undefined) => {
    if (text !== undefined) into[field] = parseNumber(flag, text);
  };
  if (kind === 'shadow') {
    put(body, 'fraction', '--fraction', o.fraction);
    put(body, 'duration_s', '--duration-s', o.durationS);
    const rule: Record<string, unknown> = {};
    put(rule, 'min_agreement', '--min-agreement', o.minAgreement);
    put(rule, 'max_p99_ratio', '--max-p99-ratio', o.maxP99Ratio);
    put(rule, 'max_error_rate', '--max-error-rate', o.maxErrorRate);
    put(rule, 'min_compared', '--min-compared', o.minCompared);
    if (Object.keys(rule).length) body.rule = rule;
    return body;
  }
  put(body, 'window_s', '--window-s', o.windowS);
  const checks: Record<string, unknown> = {};
  put(checks, 'max_error_increase', '--max-error-increase', o.maxErrorIncrease);
  put(checks, 'max_p99_ratio', '--max-p99-ratio', o.maxP99Ratio);
  put(checks, 'alpha', '--alpha', o.alpha);
  put(checks, 'min_requests', '--min-requests', o.minRequests);
  put(checks, 'max_prediction_ks', '--max-prediction-ks', o.maxPredictionKs);
  put(checks, 'min_predictions', '--min-predictions', o.minPredictions);
  put(checks, 'confirm_s', '--confirm-s', o.confirmS);
  if (Object.keys(checks).length) body.checks = checks;
  if (kind === 'canary') {
    if (o.steps !== undefined) body.steps = parseSteps(o.steps);
    put(body, 'step_min_s', '--step-min-s', o.stepMinS);
    put(body, 'step_min_requests', '--step-min-requests', o.stepMinRequests);
  } else {
    put(body, 'bake_s', '--bake-s', o.bakeS);
  }
  return body;
}

function send(t: AdminTarget, method: string, p: string, body: unknown): Promise<unknown> {
  return request(t, method, p, { chunks: [Buffer.from(JSON.stringify(body))], headers: { 'content-type': 'application/json' } });
}

function print(json: boolean | undefined, answer: unknown, lines: () => string[]): void {
  if (json) console.log(JSON.stringify(answer, null, 2));
  else for (const l of lines()) console.log(l);
}

/** The path of deployment `id`; the server checks the id (DEPLOYMENT_INVALID unless a positive integer). */
function path(id: string, tail = ''): string {
  return `${BASE}/${encodeURIComponent(id)}${tail}`;
}

/** The options every create command shares: the stable version, promotion, the server. */
function createOptions(c: Command): Command {
  return adminOptions(c
    .option('--stable <version>', 'the version it replaces (default: the production version)')
    .option('--no-auto-promote', 'wait for `sluice deploy promote` at the end instead of promoting')
    .option('--json', 'print the server\'s answer as JSON'));
}

/** The canary checks, which canary and blue-green share. */
function checkOptions(c: Command): Command {
  return c
    .option('--window-s <s>', 'the judge\'s window in seconds (default 30)')
    .option('--max-error-increase <rate>', 'largest tolerated candidate error rate minus stable\'s (default 0.01)')
    .option('--max-p99-ratio <ratio>', 'largest tolerated candidate p99 (and p50) over stable\'s (default 1.5)')
    .option('--alpha <a>', 'significance level of the error and latency tests (default 0.05)')
    .option('--min-requests <n>', 'requests of each version in the window before a check can pass (default 100)')
    .option('--max-prediction-ks <d>', 'largest tolerated KS distance between candidate and stable sampled predictions (default 0.2)')
    .option('--min-predictions <n>', 'sampled predictions of each version before the drift check judges (default 50)')
    .option('--confirm-s <s>', 'seconds a latency or drift failure must hold before it rolls back; errors never wait (default 3)');
}

export function addDeployCommands(program: Command): void {
  const deploy = program.command('deploy').description('deployments: canary, blue-green and shadow rollouts with automatic rollback (admin API)');

  const create = (kind: CreateKind) => async (model: string, candidate: string, o: Target & CreateOptions & { json?: boolean }) => {
    const body = deploymentBody(kind, model, candidate, o);
    const r = (await send(adminTarget(o), 'POST', BASE, body)) as DeploymentJson & { route_generation: number };
    print(o.json, r, () => [createdLine(r)]);
  };

  createOptions(checkOptions(deploy.command('canary <model> <candidate>')
    .description('send a growing share of traffic to the candidate, step by step, judged against the stable version; rolled back at the first failed check'))
    .option('--steps <list>', 'traffic shares in percent, increasing to 100 (default 1,5,25,50,100)')
    .option('--step-min-s <s>', 'least time per step in seconds (default 30)')
    .option('--step-min-requests <n>', 'least candidate requests per step (default 100)'))
    .action(create('canary'));

  createOptions(checkOptions(deploy.command('blue-green <model> <candidate>')
    .description('switch all traffic to the candidate at once; the stable version stays loaded through the bake and takes it back at a failed check'))
    .option('--bake-s <s>', 'bake period in seconds (default 60)'))
    .action(create('blue-green'));

  createOptions(deploy.command('shadow <model> <candidate>')
    .description('mirror a share of traffic to the candidate for a while, then promote or discard it by the rule')
    .option('--fraction <share>', 'share of requests mirrored, in (0, 1] (default 0.1)')
    .option('--duration-s <s>', 'how long to mirror, in seconds (default 60)')
    .option('--min-agreement <share>', 'least share of answers agreeing with the stable version\'s (default 0.99)')
    .option('--max-p99-ratio <ratio>', 'largest shadow p99 over the caller\'s (default 1.5)')
    .option('--max-error-rate <rate>', 'largest shadow error rate (default 0.01)')
    .option('--min-compared <n>', 'least answers compared (default 100)'))
    .action(create('shadow'));

  adminOptions(deploy.command('status [id]')
    .description('without an id, every deployment; with one, its settings, last verdict with its checks, and events')
    .option('--state <state>', 'the list: only active (running, paused) or finished ones')
    .option('--json', 'print the server\'s answer as JSON'))
    .action(async (id: string | undefined, o: Target & { state?: string; json?: boolean }) => {
      if (id !== undefined) {
        if (o.state !== undefined) throw bad('--state filters the list: give it without an id');
        const r = (await request(adminTarget(o), 'GET', path(id))) as DeploymentJson & { events: DeploymentEventJson[] };
        return print(o.json, r, () => deploymentLines(r));
      }
      if (o.state !== undefined && o.state !== 'active' && o.state !== 'finished') throw bad(`--state ${JSON.stringify(o.state)}: write active or finished`);
      const r = (await request(adminTarget(o), 'GET', o.state ? `${BASE}?state=${o.state}` : BASE)) as DeploymentJson[];
      print(o.json, r, () => deploymentListLines(r));
    });

  const actions: Array<[string, string]> = [
    ['pause', 'hold a running deployment where it is (its traffic stays as it is)'],
    ['resume', 'let a paused deployment move on'],
    ['abort', 'end a deployment now: all traffic back to the stable version'],
    ['promote', 'make the candidate production now, whatever step the deployment is at'],
  ];
  for (const [action, description] of actions) {
    adminOptions(deploy.command(`${action} <id>`)
      .description(description)
      .option('--reason <text>', 'why (kept in the deployment\'s events and the audit log)')
      .option('--json', 'print the server\'s answer as JSON'))
      .action(async (id: string, o: Target & { reason?: string; json?: boolean }) => {
        const r = (await send(adminTarget(o), 'POST', path(id, `/${action}`), o.reason !== undefined ? { reason: o.reason } : {})) as DeploymentJson & {
          promoted?: { version: string; replaced_production: string | null };
        };
        print(o.json, r, () => [actedLine(r)]);
      });
  }
}
