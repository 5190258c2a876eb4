/**
 * The Dockerfile checked against the project, since no Docker engine runs here to build it
 * (scripts/image/check.sh runs its build script and serves the result in CI): the build stage
 * runs scripts/image/build.sh, the runtime runs as a non-root user, every ENV is a setting of the
 * configuration schema with a valid value, EXPOSE is the configured ports, the HEALTHCHECK
 * command passes against a real server (and fails without one), CMD is exec form on the built
 * entry point.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, schema } from '../../src/config/index.js';
import { projectRoot } from '../../src/paths.js';
import { startFull, type FullServer } from '../helpers/server.js';

const run = promisify(execFile);

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | undefined;
  body: Instruction[];
}

/** Instructions by stage: comments dropped, `\` continuations joined, ARGs before FROM kept apart. */
function parseDockerfile(text: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = (m[1] ?? '').toUpperCase();
    const args = (m[2] ?? '').trim().replace(/\s+/g, ' ');
    const current = stages[stages.length - 1];
    if (op === 'FROM') {
      const [from = '', as, name] = args.split(' ');
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, body: [] });
    } else if (current) {
      current.body.push({ op, args });
    } else if (op === 'ARG') {
      const [k = '', v = ''] = args.split('=');
      globalArgs.set(k, v);
    }
  }
  return { globalArgs, stages };
}

/** `K=V K2="V 2"` pairs of an ENV instruction. */
function envPairs(args: string): Array<[string, string]> {
  return [...args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)].map((m) => [m[1] ?? '', m[3] ?? m[2] ?? '']);
}

/** The JSON array of an exec-form instruction (HEALTHCHECK's options before CMD skipped). */
function execForm(args: string): string[] {
  const json = args.slice(args.indexOf('['));
  return JSON.parse(json) as string[];
}

const dockerfile = parseDockerfile(readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8'));
const runtime = (() => {
  const last = dockerfile.stages[dockerfile.stages.length - 1];
  if (!last) throw new Error('Dockerfile: no FROM');
  return last;
})();
const build = dockerfile.stages.find((s) => s.name === 'build');
const all = (stage: Stage, op: string) => stage.body.filter((i) => i.op === op);
/** The stage's one `op` instruction (fails the test when there are none or several). */
const one = (stage: Stage, op: string): Instruction => {
  const found = all(stage, op);
  expect(found, `${op} in the runtime stage`).toHaveLength(1);
  return found[0]!;
};
const runtimeEnv = new Map(all(runtime, 'ENV').flatMap((i) => envPairs(i.args)));
const schemaEnvNames = new Set(Object.values(schema).map((f) => f.env));

describe('Dockerfile', () => {
  it('builds on the official Node 20 bookworm images, pinned to one version for both stages', () => {
    const version = dockerfile.globalArgs.get('NODE_VERSION') ?? '';
    expect(version).toMatch(/^20\.\d+\.\d+$/);
    const [, minor] = version.split('.').map(Number);
    expect(minor, 'package.json engines: node >= 20.17').toBeGreaterThanOrEqual(17);
    expect(build?.from).toBe('node:${NODE_VERSION}-bookworm');
    expect(runtime.from).toBe('node:${NODE_VERSION}-bookworm-slim');
  });

  it('the build stage runs scripts/image/build.sh, and the runtime takes its output', () => {
    const script = path.join(projectRoot, 'scripts', 'image', 'build.sh');
    accessSync(script, constants.X_OK);
    const runs = all(build!, 'RUN').filter((i) => / scripts\/image\/build\.sh \/app$/.test(` ${i.args}`));
    expect(runs, 'RUN ... scripts/image/build.sh /app').toHaveLength(1);
    const copy = one(runtime, 'COPY');
    expect(copy.args).toMatch(/--from=build\b.* \/app \/app$/);
    expect(one(runtime, 'WORKDIR').args).toBe('/app');
  });

  it('runs as a non-root numeric user (Kubernetes runAsNonRoot can verify it)', () => {
    const users = all(runtime, 'USER');
    const last = users[users.length - 1]?.args ?? '';
    expect(last).toMatch(/^\d+(:\d+)?$/);
    expect(Number(last.split(':')[0])).toBe(10001);
  });

  it('every ENV is a configuration setting, with a value the schema accepts', () => {
    expect(runtimeEnv.size).toBeGreaterThan(0);
    for (const name of runtimeEnv.keys()) expect(schemaEnvNames, `${name} is not in src/config/index.ts`).toContain(name);
    const config = loadConfig({}, Object.fromEntries(runtimeEnv));
    // A container is reached from outside itself: the listeners cannot stay on loopback.
    expect(config.httpHost).toBe('0.0.0.0');
    expect(config.grpcHost).toBe('0.0.0.0');
  });

  it('the data directory is the one VOLUME, the only place written', () => {
    expect(runtimeEnv.get('SLUICE_DATA_DIR')).toBe('/data');
    expect(one(runtime, 'VOLUME').args.replace(/[[\]"]/g, '')).toBe('/data');
  });

  it('EXPOSE is the HTTP and gRPC ports the server listens on', () => {
    const config = loadConfig({}, Object.fromEntries(runtimeEnv));
    const exposed = all(runtime, 'EXPOSE').flatMap((i) => i.args.split(' ')).map((p) => Number(p.replace('/tcp', '')));
    expect(exposed.sort()).toEqual([config.httpPort, config.grpcPort].sort());
    expect([config.httpPort, config.grpcPort]).toEqual([schema.httpPort.default(), schema.grpcPort.default()]);
  });

  it('stops with SIGTERM and starts node itself (exec form) on the built entry point', () => {
    expect(one(runtime, 'STOPSIGNAL').args).toBe('SIGTERM');
    const cmd = execForm(one(runtime, 'CMD').args);
    expect(cmd).toEqual(['node', 'dist/src/main.js']);
    expect(existsSync(path.join(projectRoot, 'src', 'main.ts'))).toBe(true);
    expect(all(runtime, 'ENTRYPOINT')).toHaveLength(0);
  });

  it('.dockerignore keeps locally built and installed files out of the build context', () => {
    const ignored = readFileSync(path.join(projectRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['.git', 'node_modules', 'dist', 'native/target', 'native/*.node', 'data']) expect(ignored).toContain(p);
  });

  describe('HEALTHCHECK', () => {
    let server: FullServer | undefined;
    beforeAll(async () => {
      server = await startFull({ startupModels: 'none', ioThreads: 1 });
    });
    afterAll(async () => {
      await server?.close();
    });

    const healthcheck = () => {
      const cmd = execForm(one(runtime, 'HEALTHCHECK').args);
      expect(one(runtime, 'HEALTHCHECK').args).toMatch(/^--interval=\S+ --timeout=\S+ --start-period=\S+ --retries=\d+ CMD \[/);
      return cmd;
    };
    const exitCode = async (port: number): Promise<number> => {
      const [bin, ...args] = healthcheck();
      expect(bin).toBe('node');
      // The image's environment, with the port of this test's server.
      const env = { PATH: process.env.PATH, ...Object.fromEntries(runtimeEnv), SLUICE_HTTP_PORT: String(port) };
      try {
        await run(process.execPath, args, { cwd: projectRoot, env });
        return 0;
      } catch (e) {
        return (e as { code: number }).code;
      }
    };

    it('passes against a live server (GET /v2/health/live answers 200)', async () => {
      const res = await fetch(`${server!.url}/v2/health/live`);
      expect(res.status).toBe(200);
      expect(await exitCode(server!.httpPort)).toBe(0);
    });

    it('fails where nothing answers', async () => {
      const port = server!.httpPort;
      await server!.close();
      server = undefined;
      expect(await exitCode(port)).toBe(1);
    });
  });
});
