/**
 * Piscina worker: runs batches of pooled model versions on data in the shared arena.
 *
 * The piscina task is a *session* (see dispatch/board.ts): claim QUEUED batches from the
 * dispatch board and compute them until the board has been idle for a short spin window. A
 * batch's slot header names the generation (the model version the batch was admitted to) and
 * the row count; inputs are read in place and outputs written in place, so no tensor is ever
 * cloned between threads. Versions arrive on the control channel (dispatch/pool-protocol.ts),
 * are loaded and smoke-tested here, and are freed when the I/O thread says every batch using
 * them is done.
 */
import { BroadcastChannel, parentPort, threadId, workerData } from 'node:worker_threads';
import { SluiceError, toSluiceError, type SerializedError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { Manifest } from '../model/manifest.js';
import { arrayClassOf, type TypedArray } from '../model/tensor.js';
import { B_BELL, B_EPOCH, B_QUEUED, B_STOP, claim, complete, slotIndex } from '../dispatch/board.js';
import { H_GEN, H_ROWS, slotLayout, writeSlotError, type RegionLayout, type SlotLayout } from '../dispatch/slot-layout.js';
import { TAG, type ControlMessage, type WorkerData, type WorkerMessage } from '../dispatch/pool-protocol.js';
import { loadRuntime, validateRuntime, type BatchTensor, type Runtime } from './runtimes/index.js';

const data = workerData as WorkerData;
const arena = data.arena;
const header = new Int32Array(arena);
const board = new Int32Array(data.board);
const spinMs = data.spinUs / 1000;

interface Loaded {
  runtime: Runtime;
  layout: SlotLayout;
  /** Non-batch dimensions of each input, to build shapes without re-slicing per batch. */
  inputTails: number[][];
}

const ready = new Map<number, Loaded>();
const pending = new Map<number, Promise<Loaded>>();
const dropped = new Set<number>();
const needWaiters = new Map<number, Array<(l: Loaded | SluiceError) => void>>();

function post(msg: WorkerMessage): void {
  parentPort!.postMessage({ [TAG]: msg });
}

function serialize(e: unknown, fallback: 'MODEL_ERROR' | 'MODEL_LOAD_FAILED'): SerializedError {
  const err = toSluiceError(e, fallback, fallback === 'MODEL_ERROR' ? 'the model failed while computing' : 'the model could not be loaded');
  if (!(e instanceof SluiceError)) log.warn('worker: unexpected error', { thread: threadId, ...errorFields(e) });
  return err.toJSON();
}

function settleWaiters(gen: number, result: Loaded | SluiceError): void {
  const ws = needWaiters.get(gen);
  if (!ws) return;
  needWaiters.delete(gen);
  for (const w of ws) w(result);
}

async function build(manifest: Manifest, payload: Uint8Array): Promise<Loaded> {
  const layout = slotLayout(manifest);
  if (typeof layout === 'string') throw new SluiceError('MANIFEST_INVALID', `${manifest.name}@${manifest.version}: cannot run in the pool: ${layout}`);
  const runtime = await loadRuntime(manifest, payload, { allowFixtures: data.allowFixtures, inWorker: true });
  try {
    await validateRuntime(runtime);
  } catch (e) {
    await runtime.dispose();
    throw e;
  }
  return { runtime, layout, inputTails: layout.inputs.map((r) => r.spec.shape.slice(1)) };
}

/** Loads `gen` once however many times it is asked for, and acknowledges every request. */
function load(gen: number, manifest: Manifest, payload: Uint8Array): void {
  if (ready.has(gen)) {
    post({ t: 'loaded', thread: threadId, gen });
    return;
  }
  if (pending.has(gen)) return;
  dropped.delete(gen);
  const p = build(manifest, payload);
  pending.set(gen, p);
  p.then(
    (l) => {
      pending.delete(gen);
      if (dropped.has(gen)) {
        void l.runtime.dispose();
        settleWaiters(gen, new SluiceError('MODEL_NOT_READY', 'model version was unloaded'));
        return;
      }
      ready.set(gen, l);
      settleWaiters(gen, l);
      post({ t: 'loaded', thread: threadId, gen });
    },
    (e) => {
      pending.delete(gen);
      const err = serialize(e, 'MODEL_LOAD_FAILED');
      settleWaiters(gen, new SluiceError(err.code as 'MODEL_LOAD_FAILED', err.message));
      post({ t: 'loaded', thread: threadId, gen, error: err });
    },
  );
}

function unload(gen: number): void {
  const l = ready.get(gen);
  if (l) {
    ready.delete(gen);
    void l.runtime.dispose();
  } else if (pending.has(gen)) {
    dropped.add(gen);
  }
}

const control = new BroadcastChannel(data.channel);
control.onmessage = (ev: unknown) => {
  const msg = (ev as { data: ControlMessage }).data;
  if ('to' in msg && msg.to !== undefined && msg.to !== threadId) return;
  switch (msg.t) {
    case 'load':
      load(msg.gen, msg.manifest, msg.payload);
      break;
    case 'unload':
      unload(msg.gen);
      break;
    case 'gone':
      settleWaiters(msg.gen, new SluiceError('MODEL_NOT_READY', 'model version is no longer loaded'));
      break;
  }
};
// Announce ourselves so the I/O thread sends the versions that exist already (we may have
// started after their broadcast, e.g. as the replacement of a crashed worker).
post({ t: 'hello', thread: threadId });

/** A version this worker has not loaded yet (it started late): ask for it and wait. */
function obtain(gen: number): Promise<Loaded> {
  return new Promise((resolve, reject) => {
    const ws = needWaiters.get(gen) ?? [];
    ws.push((r) => (r instanceof SluiceError ? reject(r) : resolve(r)));
    needWaiters.set(gen, ws);
    if (!pending.has(gen)) post({ t: 'need', thread: threadId, gen });
  });
}

function view(r: RegionLayout, slot: number, rows: number): TypedArray {
  const Ctor = arrayClassOf(r.spec.datatype)!;
  return new Ctor(arena, slot + r.offset, rows * r.rowElements);
}

/** Computes the batch in arena slot `slot`; throws its error. */
async function runBatch(slot: number): Promise<void> {
  const base = slot >> 2;
  const gen = header[base + H_GEN]!;
  const rows = header[base + H_ROWS]!;
  const v = ready.get(gen) ?? (await obtain(gen));
  const { layout } = v;
  const inputs: BatchTensor[] = layout.inputs.map((r, i) => ({ data: view(r, slot, rows), shape: [rows, ...v.inputTails[i]!] }));
  const into = layout.outputs.map((r) => view(r, slot, rows));
  const outs = await v.runtime.run(inputs, rows, into);
  for (let i = 0; i < into.length; i++) {
    const o = outs[i]?.data;
    if (o === into[i]) continue;
    // A runtime that returned fresh arrays: copy them into the slot.
    if (!o || o.length !== into[i]!.length) throw new SluiceError('MODEL_ERROR', `output ${i} has the wrong size`);
    (into[i] as Float32Array).set(o as Float32Array);
  }
}

async function runEntry(entry: number): Promise<void> {
  const slot = Atomics.load(board, slotIndex(entry));
  try {
    await runBatch(slot);
    complete(board, entry, true);
  } catch (e) {
    writeSlotError(arena, slot, serialize(e, 'MODEL_ERROR'));
    complete(board, entry, false);
  }
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Longest a parked session sleeps before it lets its event loop run anyway. */
const PARK_MS = 20;

/**
 * The piscina task: serve the dispatch board until the pool stops (or this thread dies).
 * Returns the number of batches computed.
 */
export default async function session(): Promise<number> {
  let served = 0;
  let epoch = Atomics.load(board, B_EPOCH);
  let idleSince = performance.now();
  while (Atomics.load(board, B_STOP) === 0) {
    const entry = claim(board, data.boardEntries, threadId);
    if (entry >= 0) {
      await runEntry(entry);
      served++;
      idleSince = performance.now();
      continue;
    }
    const bell = Atomics.load(board, B_BELL);
    if (Atomics.load(board, B_EPOCH) !== epoch) {
      // A control message (load/unload) was posted: let the event loop deliver it.
      epoch = Atomics.load(board, B_EPOCH);
      await yieldToEventLoop();
    } else if (performance.now() - idleSince >= spinMs && Atomics.load(board, B_QUEUED) <= 0) {
      // Idle past the spin window: sleep until the doorbell rings, and now and then let the
      // event loop run even if it does not.
      if (Atomics.wait(board, B_BELL, bell, PARK_MS) === 'timed-out') await yieldToEventLoop();
    }
  }
  return served;
}
