/**
 * CPU time of this process's threads by kind, for benchmarks that run the server in-process and
 * ask where a request's CPU goes (bench/bandit-cpu.ts, bench/routing.ts). Read from
 * `/proc/self/task/N/stat` (ticks of 1/100 s: at tens of thousands of requests a second over a
 * few seconds, one tick is well under 0.1 µs a request). The kinds:
 *   - I/O threads: the worker I/O threads (the busiest threads at nice 0 other than the main
 *     thread) and, unless the control thread is dedicated, the main thread (I/O thread 0);
 *   - control thread: the main thread when it is dedicated;
 *   - database: the embedded database's thread, found by its nice value (> 0);
 *   - other threads: V8's helpers, mostly garbage collection, and libuv's pool.
 * `main` repeats the main thread's share, whichever kind it counts under.
 */
import { readdirSync, readFileSync } from 'node:fs';

export type ThreadTicks = Map<string, { ticks: number; nice: number }>;

export const THREAD_KINDS = ['I/O threads', 'control thread', 'database', 'other threads'] as const;

/** CPU ticks (1/100 s) of each thread of this process, and the nice value it runs at. */
export function threadTicks(): ThreadTicks {
  const out: ThreadTicks = new Map();
  for (const t of readdirSync('/proc/self/task')) {
    try {
      // Fields after the command name (which may hold spaces), from field 3 on.
      const f = readFileSync(`/proc/self/task/${t}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out.set(t, { ticks: Number(f[11]) + Number(f[12]), nice: Number(f[16]) });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/**
 * CPU µs per request between two readings, by thread kind (and `main`, `all`), for `requests`
 * requests served by a server with `ioWorkers` worker I/O threads.
 */
export function cpuPerRequest(t0: ThreadTicks, t1: ThreadTicks, requests: number, ioWorkers: number, dedicated: boolean): Record<string, number> {
  const cpu: Record<string, number> = { 'I/O threads': 0, 'control thread': 0, main: 0, database: 0, 'other threads': 0 };
  const workerIds = new Set([...t1].filter(([id, b]) => id !== String(process.pid) && b.nice === 0)
    .map(([id, b]) => [id, b.ticks - (t0.get(id)?.ticks ?? 0)] as const)
    .sort((a, b) => b[1] - a[1]).slice(0, ioWorkers).map(([id]) => id));
  for (const [id, b] of t1) {
    const us = ((b.ticks - (t0.get(id)?.ticks ?? 0)) * 10_000) / requests;
    const kind = (id === String(process.pid) && !dedicated) || workerIds.has(id) ? 'I/O threads' : id === String(process.pid) ? 'control thread' : b.nice > 0 ? 'database' : 'other threads';
    cpu[kind] = (cpu[kind] ?? 0) + us;
    if (id === String(process.pid)) cpu.main = us;
  }
  cpu.all = THREAD_KINDS.reduce((sum, k) => sum + cpu[k]!, 0);
  return cpu;
}
