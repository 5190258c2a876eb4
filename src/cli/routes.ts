/**
 * `sluice route show|set|clear`: a model's traffic route through the admin API (--url, --key or
 * SLUICE_API_KEY). `set` builds the route from options or reads it from --file, and checks it
 * with the server's own parser first, so a typo fails here with the same message. `--owner`
 * says on whose behalf (default manual); `--force` replaces or clears a route an experiment or a
 * deployment owns (the server refuses that with ROUTE_OWNED otherwise, and audits it).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { SluiceError } from '../errors.js';
import { checkName } from '../names.js';
import { parseRoute, parseRouteOwner, type RouteJson } from '../routing/route.js';
import { adminOptions, adminTarget, request } from './admin-client.js';

function collect(v: string, all: string[] = []): string[] {
  return [...all, v];
}

/** `name=version:weight` (names never contain `=` or `:`, see src/names.ts). */
export function parseVariantOption(s: string): { name: string; version: string; weight: number } {
  const m = /^([^=:]+)=([^=:]+):([^=:]+)$/.exec(s);
  if (!m) throw new SluiceError('INVALID_ARGUMENT', `--variant ${JSON.stringify(s)}: write name=version:weight, e.g. a=1.0.0:0.9`);
  return { name: m[1]!, version: m[2]!, weight: Number(m[3]) };
}

/** `version:fraction`. */
export function parseShadowOption(s: string): { version: string; fraction: number } {
  const m = /^([^=:]+):([^=:]+)$/.exec(s);
  if (!m) throw new SluiceError('INVALID_ARGUMENT', `--shadow ${JSON.stringify(s)}: write version:fraction, e.g. 3.0.0:0.5`);
  return { version: m[1]!, fraction: Number(m[2]) };
}

interface SetOptions {
  url: string;
  key?: string;
  variant?: string[];
  assignment?: string;
  salt?: string;
  shadow?: string[];
  logFeatures?: boolean;
  file?: string;
  reason?: string;
  owner?: string;
  force?: boolean;
}

async function routeBody(o: SetOptions): Promise<Record<string, unknown>> {
  if (o.file !== undefined) {
    if (o.variant || o.assignment !== undefined || o.salt !== undefined || o.shadow || o.logFeatures) {
      throw new SluiceError('INVALID_ARGUMENT', '--file holds the whole route: give it without --variant, --assignment, --salt, --shadow or --log-features');
    }
    try {
      return JSON.parse(await readFile(o.file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new SluiceError('INVALID_ARGUMENT', `cannot read ${o.file} as JSON: ${(e as Error).message}`);
    }
  }
  if (!o.variant) throw new SluiceError('INVALID_ARGUMENT', 'give the route as --variant name=version:weight (one or more) or --file route.json');
  return {
    variants: o.variant.map(parseVariantOption),
    assignment: o.assignment ?? 'hash',
    ...(o.salt !== undefined ? { salt: o.salt } : {}),
    ...(o.shadow ? { shadows: o.shadow.map(parseShadowOption) } : {}),
    log_features: o.logFeatures === true,
  };
}

function percent(x: number): string {
  return `${Number((x * 100).toPrecision(6))}%`;
}

/** One line describing a route. */
export function describeRoute(r: RouteJson): string {
  const variants = r.variants.map((v) => `${v.name}=${v.version} ${percent(v.weight)}${v.ranges ? ` in ${v.ranges.length} range${v.ranges.length === 1 ? '' : 's'}` : ''}`).join(', ');
  const shadows = r.shadows.length ? `; shadows ${r.shadows.map((s) => `${s.version} ${percent(s.fraction)}`).join(', ')}` : '';
  return `${variants}; ${r.assignment === 'hash' ? `hash of salt ${JSON.stringify(r.salt)} + unit id` : 'random per request'}${shadows}${r.log_features ? '; features logged' : ''}`;
}

function path(model: string): string {
  return `/v1/admin/models/${encodeURIComponent(model)}/route`;
}

export function addRouteCommands(program: Command): void {
  const route = program.command('route').description('traffic routes: how a model\'s unversioned requests are spread over its versions (admin API)');
  adminOptions(route.command('show <model>').description('the model\'s route (none: it serves its production version)'))
    .action(async (m: string, o: { url: string; key?: string }) => {
      checkName(m, 'model name');
      console.log(JSON.stringify(await request(adminTarget(o), 'GET', path(m)), null, 2));
    });

  adminOptions(route.command('set <model>')
    .description('put a route in force (the server loads every version it names first)')
    .option('--variant <name=version:weight>', 'a variant (repeat for each)', collect)
    .option('--assignment <how>', 'hash (sticky per unit id), random (per request) or bandit (Thompson sampling on rewards; settings in --file)')
    .option('--salt <salt>', 'hash salt (default: the model name)')
    .option('--shadow <version:fraction>', 'also run this share of requests on a shadow version (repeatable)', collect)
    .option('--log-features', 'log the input features of each decision')
    .option('--file <route.json>', 'the route as JSON: {variants, assignment, salt?, shadows?, log_features?}')
    .option('--reason <text>', 'why (goes into the audit log)')
    .option('--owner <owner>', 'on whose behalf: manual (default), experiment or deployment')
    .option('--force', 'replace a route that an experiment or a deployment owns (audited)'))
    .action(async (m: string, o: SetOptions) => {
      checkName(m, 'model name');
      const body = await routeBody(o);
      parseRoute(body, m); // the server's checks, here first
      if (o.owner !== undefined) parseRouteOwner(o.owner);
      const extra = { ...(o.reason !== undefined ? { reason: o.reason } : {}), ...(o.owner !== undefined ? { owner: o.owner } : {}), ...(o.force ? { force: true } : {}) };
      const r = (await request(adminTarget(o), 'PUT', path(m), {
        chunks: [Buffer.from(JSON.stringify({ ...body, ...extra }))],
        headers: { 'content-type': 'application/json' },
      })) as { route: RouteJson; owner: string; generation: number; changed: boolean; forced_over: string | null };
      // A manual route (the usual one) needs no word about its owner.
      const owner = r.owner === 'manual' ? '' : `, owner ${r.owner}`;
      const forced = r.forced_over ? `, replacing a route of ${r.forced_over}` : '';
      console.log(`${m}: ${r.changed ? 'route in force' : 'route unchanged'} (generation ${r.generation}${owner}${forced}): ${describeRoute(r.route)}`);
    });

  adminOptions(route.command('clear <model>').description('remove the route: the model serves its production version again')
    .option('--reason <text>', 'why')
    .option('--force', 'clear a route that an experiment or a deployment owns (audited)'))
    .action(async (m: string, o: { url: string; key?: string; reason?: string; force?: boolean }) => {
      checkName(m, 'model name');
      const r = (await request(adminTarget(o), 'DELETE', path(m), {
        chunks: [Buffer.from(JSON.stringify({ ...(o.reason !== undefined ? { reason: o.reason } : {}), ...(o.force ? { force: true } : {}) }))],
        headers: { 'content-type': 'application/json' },
      })) as { generation: number; changed: boolean; forced_over: string | null };
      const forced = r.forced_over ? ` (a route of ${r.forced_over}, forced)` : '';
      console.log(r.changed ? `${m}: route cleared${forced} (generation ${r.generation}); serving its production version` : `${m}: had no route; serving its production version`);
    });
}
