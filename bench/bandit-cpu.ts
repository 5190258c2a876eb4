/**
 * `npm run bench -- bandit-cpu [--quick]`: where a bandit answer's CPU goes, beside issue #13's
 * HTTP ratio (bench/bandits.ts). One in-process server (two I/O threads, embedded PGlite,
 * admission off), h2load --h1 with 32 connections at capacity, per phase in interleaved rounds:
 *   - demo-logistic on its default route;
 *   - demo-logistic behind a one-variant route that logs its 100 features (every answer also
 *     writes a decision row with its context, as every bandit answer does);
 *   - demo-bandit (LinUCB, 5 arms x 100 features).
 * For each: requests/s, and CPU time per request of every thread of this process that used
 * any (`/proc/self/task/N/stat`: the main thread, the control plane and, unless
 * SLUICE_CONTROL_THREAD=dedicated, I/O thread 0; the worker I/O threads (the busiest others);
 * the embedded database's thread, found by its nice value; V8's helper threads, mostly garbage
 * collection; h2load is a child process and not counted), the main thread's full garbage
 * collections per second with their pauses, and the share of the phase's decisions the log
 * dropped (its buffer full: the database's CPU per request then covers fewer rows).
 * Correctness first: each model's answer to the bench's body is checked (the logistic formula;
 * the bandit's arm, propensity and event id), and the logged phase's decisions must reach the log.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { serve } from '../src/serve.js';
import { H2LOAD_WARM_UP_S, h2loadRate, hasH2load } from './h2load.js';
import { demoAnswer } from './engine-util.js';
import { cpuPerRequest, threadTicks } from './thread-cpu.js';
import { check, median, table } from './util.js';

export async function runBanditCpu(): Promise<Record<string, number>> {
  if (!(await hasH2load())) {
    console.log('h2load not installed (apt-get install nghttp2-client): bandit-cpu skipped');
    return {};
  }
  const quick = process.argv.includes('--quick');
  const rounds = quick ? 1 : 2;
  const seconds = quick ? 3 : 5;
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-bandit-cpu-'));
  const adminKey = 'sk_bench_admin_' + 'x'.repeat(32);
  const s = await serve({ dataDir: path.join(dir, 'data'), httpPort: 0, grpcPort: 0, adminKey, admission: false, startupModels: ['demo-logistic', 'demo-bandit'] });
  const url = `http://127.0.0.1:${s.httpPort}`;
  const dedicated = s.config.controlThread === 'dedicated';
  const ioWorkers = dedicated ? s.ioThreads : s.ioThreads - 1;
  const features = Array.from({ length: 100 }, (_, i) => Math.sin(i));
  const body = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: features }] });
  const bodyFile = path.join(dir, 'body.json');
  writeFileSync(bodyFile, body);
  const route = async (on: boolean): Promise<void> => {
    const r = await fetch(`${url}/v1/admin/models/demo-logistic/route`, {
      method: on ? 'PUT' : 'DELETE', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(on ? { variants: [{ name: 'all', version: s.engine.liveVersions('demo-logistic').default, weight: 1 }], assignment: 'random', log_features: true } : {}),
    });
    check(r.ok, `route ${on ? 'set' : 'clear'}: HTTP ${r.status} ${await r.text()}`);
  };
  const infer = async (model: string) => {
    const res = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { ok: res.ok, doc: (await res.json()) as { parameters?: Record<string, unknown>; outputs: Array<{ name: string; data: number[] }> } };
  };
  try {
    // Correctness first.
    const logistic = await infer('demo-logistic');
    check(logistic.ok && Math.abs(logistic.doc.outputs[0]!.data[0]! - demoAnswer(Float32Array.from(features))) < 1e-6, `demo-logistic answer ${JSON.stringify(logistic.doc)}`);
    const bandit = await infer('demo-bandit');
    const action = bandit.doc.outputs.find((o) => o.name === 'action')?.data[0];
    check(bandit.ok && action !== undefined && action >= 0 && action < 5 && typeof bandit.doc.parameters?.event_id === 'string' && Number(bandit.doc.parameters?.propensity) > 0, `demo-bandit answer ${JSON.stringify(bandit.doc)}`);
    await route(true);
    const logged = await infer('demo-logistic');
    check(logged.ok && typeof logged.doc.parameters?.event_id === 'string', `routed answer ${JSON.stringify(logged.doc)}`);
    const before = s.decisions.stats.logged;
    const until = Date.now() + 5000;
    while (s.decisions.stats.logged <= before && Date.now() < until) {
      await infer('demo-logistic');
      await new Promise((r) => setTimeout(r, 50));
    }
    check(s.decisions.stats.logged > before, 'the routed phase\'s decisions reach the log');
    await route(false);
    console.log('bandit-cpu: answers checked (logistic formula; bandit arm, propensity, event id; routed decisions logged)');

    const phases = ['logistic', 'logged', 'bandit'] as const;
    const perPhase = new Map<string, { rate: number[]; cpu: Array<Record<string, number>> }>(phases.map((p) => [p, { rate: [], cpu: [] }]));
    // The main thread's full collections (it is I/O thread 0 as well as the control plane: each
    // pause holds its connections' requests), counted from V8's own GC events.
    const majors = { count: 0, ms: 0 };
    const gcs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
          majors.count++;
          majors.ms += e.duration;
        }
      }
    });
    gcs.observe({ entryTypes: ['gc'] });
    for (let r = 0; r < rounds; r++) {
      for (const phase of r % 2 === 0 ? phases : [...phases].reverse()) {
        if (phase === 'logged') await route(true);
        const t0 = threadTicks();
        const m0 = { ...majors };
        const d0 = { ...s.decisions.stats };
        const rate = await h2loadRate('http', `127.0.0.1:${s.httpPort}`, bodyFile, seconds, phase, phase === 'bandit' ? 'demo-bandit' : 'demo-logistic');
        const t1 = threadTicks();
        if (phase === 'logged') await route(false);
        // CPU per request over the whole run, warm-up included (its requests are not counted).
        const requests = rate * (seconds + H2LOAD_WARM_UP_S);
        const cpu = cpuPerRequest(t0, t1, requests, ioWorkers, dedicated);
        const runS = seconds + H2LOAD_WARM_UP_S;
        cpu['main full GCs/s'] = (majors.count - m0.count) / runS;
        cpu['main full GC ms/s'] = (majors.ms - m0.ms) / runS;
        // Decisions the log dropped (its buffer full: the database thread, at its low priority,
        // behind): the database's CPU per request then covers fewer decisions than requests.
        const d1 = s.decisions.stats;
        const offered = d1.logged + d1.dropped + d1.pending - (d0.logged + d0.dropped + d0.pending);
        cpu['dropped %'] = offered > 0 ? (100 * (d1.dropped - d0.dropped)) / offered : 0;
        perPhase.get(phase)!.rate.push(rate);
        perPhase.get(phase)!.cpu.push(cpu);
      }
    }
    gcs.disconnect();
    const label = { logistic: 'demo-logistic, default route', logged: 'demo-logistic, route logging 100 features', bandit: 'demo-bandit (LinUCB 5 x 100)' };
    const cell = (p: string, k: string) => median(perPhase.get(p)!.cpu.map((c) => c[k]!)).toFixed(1);
    table(`Capacity and CPU µs per request by thread, h2load --h1 32 connections, ${seconds} s per phase, ${rounds} interleaved round(s), medians (control thread: ${s.config.controlThread}, ${s.ioThreads} I/O threads)`,
      ['phase', 'req/s', 'I/O threads', dedicated ? 'main thread (the dedicated control thread)' : 'of which the main thread (I/O thread 0 and the control plane)', 'database thread', 'other threads (GC helpers)', 'all',
        'main thread full GCs /s', 'their pauses ms/s', 'decisions dropped %'],
      phases.map((p) => [label[p], Math.round(median(perPhase.get(p)!.rate)), cell(p, 'I/O threads'), cell(p, 'main'), cell(p, 'database'), cell(p, 'other threads'),
        cell(p, 'all'), cell(p, 'main full GCs/s'), cell(p, 'main full GC ms/s'), cell(p, 'dropped %')]));
    const ratio = median(perPhase.get('bandit')!.rate) / median(perPhase.get('logistic')!.rate);
    console.log(`demo-bandit / demo-logistic capacity (closed loop, not issue #13's p99-bounded rate): ${ratio.toFixed(2)}`);
    return { banditOverLogisticCapacity: ratio };
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
