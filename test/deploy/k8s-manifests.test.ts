/**
 * deploy/k8s checked against the project: every manifest parses, kustomization.yaml lists them
 * all, every environment variable is a setting of the configuration schema (with a value it
 * accepts), credentials come from the Secret, ports and probe paths are the server's (the probe
 * paths GET 200 from a real server), the grace period covers the drain, and the Service, HPA
 * and PDB select or target the Deployment's pods.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig, schema, type Config } from '../../src/config/index.js';
import { projectRoot } from '../../src/paths.js';
import { startFull, type FullServer } from '../helpers/server.js';

/** After the drain timeout, shutdown still closes the registry (PostgreSQL gets up to 3 s; README, Shutdown). */
const CLOSE_MARGIN_MS = 5_000;
/** A pod name, standing in for the fieldRef metadata.name. */
const POD_NAME = 'sluice-7d9f8b6c5-x2x4q';

const dir = path.join(projectRoot, 'deploy', 'k8s');
type Obj = Record<string, any>;

function docs(file: string): Obj[] {
  const parsed = parseAllDocuments(readFileSync(path.join(dir, file), 'utf8'));
  for (const d of parsed) if (d.errors.length) throw new Error(`${file}: ${d.errors[0]?.message}`);
  return parsed.map((d) => d.toJS() as Obj).filter((o) => o !== null);
}

/** The one element of `xs` (an error naming `what` when there are none or several). */
function single<T>(xs: T[], what: string): T {
  const [x] = xs;
  if (xs.length !== 1 || x === undefined) throw new Error(`expected one ${what}, found ${xs.length}`);
  return x;
}

const kustomization = single(docs('kustomization.yaml'), 'document in kustomization.yaml');
const resources: string[] = kustomization.resources ?? [];
const objects = resources.flatMap((f) => docs(f));
const secretExamples = readdirSync(dir).filter((f) => f.endsWith('.example.yaml')).flatMap((f) => docs(f));

const only = (kind: string): Obj => single(objects.filter((o) => o.kind === kind), `${kind} in the kustomization's resources`);

/** Whether a label selector (matchLabels) selects these labels. */
function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

const deployment = () => only('Deployment');
const podSpec = () => deployment().spec.template.spec;
const container = (): Obj => single(podSpec().containers as Obj[], 'container in the pod');
const schemaFields = Object.values(schema) as Array<{ env: string; secret?: boolean }>;
const schemaEnvNames = new Set(schemaFields.map((f) => f.env));
const secretEnvNames = new Set(schemaFields.filter((f) => f.secret).map((f) => f.env));

/** The container's environment as the pod would see it: the ConfigMaps, then env entries (Secret values from the example). */
function podEnv(): { names: Map<string, string>; env: Record<string, string> } {
  const c = container();
  const origin = new Map<string, string>();
  const env: Record<string, string> = {};
  for (const from of (c.envFrom ?? []) as Obj[]) {
    const name = from.configMapRef?.name;
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name);
    expect(cm, `envFrom configMapRef ${name} is a ConfigMap of the kustomization`).toBeDefined();
    for (const [k, v] of Object.entries(cm!.data ?? {})) {
      origin.set(k, `ConfigMap ${name}`);
      env[k] = String(v);
    }
  }
  for (const e of (c.env ?? []) as Obj[]) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) {
      const secret = secretExamples.find((o) => o.kind === 'Secret' && o.metadata.name === ref.name);
      expect(secret, `Secret ${ref.name} has an example (deploy/k8s/*.example.yaml)`).toBeDefined();
      expect(Object.keys(secret!.stringData ?? {}), `key ${ref.key} of Secret ${ref.name}`).toContain(ref.key);
      origin.set(e.name, 'Secret');
      env[e.name] = String(secret!.stringData[ref.key]);
    } else if (e.valueFrom?.fieldRef) {
      expect(e.valueFrom.fieldRef.fieldPath).toBe('metadata.name');
      origin.set(e.name, 'fieldRef');
      env[e.name] = POD_NAME;
    } else {
      origin.set(e.name, 'value');
      env[e.name] = String(e.value ?? '');
    }
  }
  return { names: origin, env };
}

/** The server's configuration in the pod. */
const podConfig = (): Readonly<Config> => loadConfig({}, podEnv().env);

/** Milliseconds the preStop hook takes (exec `sleep N` or the native sleep action). */
function preStopMs(): number {
  const hook = container().lifecycle?.preStop;
  if (!hook) return 0;
  if (hook.sleep) return Number(hook.sleep.seconds) * 1000;
  const cmd: string[] = hook.exec?.command ?? [];
  expect(cmd[0], 'preStop is a sleep').toBe('sleep');
  return Number(cmd[1]) * 1000;
}

const containerPort = (name: string): number => (container().ports as Obj[]).find((p) => p.name === name)?.containerPort;

describe('deploy/k8s', () => {
  it('kustomization.yaml lists every manifest (examples aside), and each exists and parses', () => {
    const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml' && !f.endsWith('.example.yaml'));
    expect([...resources].sort()).toEqual(files.sort());
    expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service']);
  });

  it('every environment variable is a setting of src/config/index.ts, with a value it accepts', () => {
    const { names } = podEnv();
    expect(names.size).toBeGreaterThan(0);
    for (const name of names.keys()) expect(schemaEnvNames, `${name} (from ${names.get(name)}) is not in the configuration schema`).toContain(name);
    const config = podConfig();
    // Probes and the Service reach the pod's address, not its loopback.
    expect(config.httpHost).toBe('0.0.0.0');
    expect(config.grpcHost).toBe('0.0.0.0');
    expect(config.replicaId).toBe(POD_NAME);
  });

  it('credentials come from the Secret (database URL, S3 keys, admin key), never from the ConfigMap', () => {
    const { names } = podEnv();
    for (const name of ['SLUICE_DATABASE_URL', 'SLUICE_S3_ACCESS_KEY_ID', 'SLUICE_S3_SECRET_ACCESS_KEY', 'SLUICE_ADMIN_KEY']) {
      expect(names.get(name), name).toBe('Secret');
    }
    for (const [name, from] of names) if (secretEnvNames.has(name)) expect(from, `${name} is secret`).toBe('Secret');
  });

  it('container and Service ports are the ports the servers listen on; gRPC is marked appProtocol grpc', () => {
    const config = podConfig();
    expect(containerPort('http')).toBe(config.httpPort);
    expect(containerPort('grpc')).toBe(config.grpcPort);
    const ports = only('Service').spec.ports as Obj[];
    const target = (p: Obj) => (typeof p.targetPort === 'string' ? containerPort(p.targetPort) : p.targetPort ?? p.port);
    expect(ports.map((p) => p.name).sort()).toEqual(['grpc', 'http']);
    expect(target(ports.find((p) => p.name === 'http')!)).toBe(config.httpPort);
    const grpc = ports.find((p) => p.name === 'grpc')!;
    expect(target(grpc)).toBe(config.grpcPort);
    expect(grpc.appProtocol).toBe('grpc');
  });

  it('the probes use the health routes on the HTTP port', () => {
    const c = container();
    expect(c.readinessProbe.httpGet.path).toBe('/v2/health/ready');
    expect(c.livenessProbe.httpGet.path).toBe('/v2/health/live');
    for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean)) {
      const port = probe.httpGet.port;
      expect(typeof port === 'string' ? containerPort(port) : port).toBe(podConfig().httpPort);
    }
  });

  describe('against a real server', () => {
    let server: FullServer;
    beforeAll(async () => {
      server = await startFull({ startupModels: 'none', ioThreads: 1 });
    });
    afterAll(async () => {
      await server?.close();
    });

    it('every probe path answers 200', async () => {
      const c = container();
      const paths = [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean).map((p) => p.httpGet.path as string);
      expect(paths.length).toBeGreaterThanOrEqual(2);
      for (const p of paths) expect((await fetch(`${server.url}${p}`)).status, p).toBe(200);
    });
  });

  it('terminationGracePeriodSeconds covers preStop + drain grace + drain timeout', () => {
    const config = podConfig();
    const needMs = preStopMs() + config.drainGraceMs + config.drainTimeoutMs + CLOSE_MARGIN_MS;
    expect(podSpec().terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(needMs);
    expect(preStopMs(), 'a preStop hook').toBeGreaterThan(0);
  });

  it('runs as the image\'s non-root user, read-only, without privileges; the data directory is a volume', () => {
    const pod = podSpec().securityContext;
    const c = container().securityContext;
    const dockerUser = /^USER (\d+)/m.exec(readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8'))?.[1];
    expect(pod.runAsNonRoot).toBe(true);
    expect(String(pod.runAsUser)).toBe(dockerUser);
    expect(c.runAsNonRoot).toBe(true);
    expect(c.readOnlyRootFilesystem).toBe(true);
    expect(c.allowPrivilegeEscalation).toBe(false);
    expect(c.capabilities.drop).toContain('ALL');
    const mount = (container().volumeMounts as Obj[]).find((m) => m.mountPath === podConfig().dataDir);
    expect(mount, `a volume at SLUICE_DATA_DIR ${podConfig().dataDir}`).toBeDefined();
    expect(mount!.readOnly ?? false).toBe(false);
    const volume = (podSpec().volumes as Obj[]).find((v) => v.name === mount!.name);
    expect(volume?.emptyDir ?? volume?.persistentVolumeClaim).toBeDefined();
  });

  it('has 3 replicas with CPU and memory requests and limits', () => {
    expect(deployment().spec.replicas).toBe(3);
    const r = container().resources;
    for (const k of ['cpu', 'memory']) {
      expect(r.requests[k], `requests.${k}`).toBeDefined();
      expect(r.limits[k], `limits.${k}`).toBeDefined();
    }
  });

  it('the Deployment selects its own pods, and the Service and PDB select them', () => {
    const labels = deployment().spec.template.metadata.labels;
    expect(selects(deployment().spec.selector.matchLabels, labels)).toBe(true);
    expect(selects(only('Service').spec.selector, labels), 'Service selector').toBe(true);
    const pdb = only('PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(selects(pdb.spec.selector.matchLabels, labels), 'PDB selector').toBe(true);
    // It must let a drain proceed: at least one pod may go.
    if (pdb.spec.minAvailable !== undefined) expect(pdb.spec.minAvailable).toBeLessThan(deployment().spec.replicas);
    else expect(pdb.spec.maxUnavailable).toBeGreaterThanOrEqual(1);
  });

  it('the HorizontalPodAutoscaler (autoscaling/v2) targets the Deployment and keeps its 3 replicas at least', () => {
    const hpa = only('HorizontalPodAutoscaler');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment().metadata.name });
    expect(hpa.spec.minReplicas).toBe(deployment().spec.replicas);
    expect(hpa.spec.maxReplicas).toBeGreaterThanOrEqual(hpa.spec.minReplicas);
    // Utilization targets are relative to the requests.
    for (const m of hpa.spec.metrics as Obj[]) if (m.resource?.target?.type === 'Utilization') expect(container().resources.requests[m.resource.name]).toBeDefined();
  });

  it('kustomize\'s image entry names the container\'s image', () => {
    const image = String(container().image).split(':')[0];
    expect((kustomization.images as Obj[]).map((i) => i.name)).toContain(image);
  });
});
