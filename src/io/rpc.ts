/**
 * Calls between the control plane and an I/O thread over one MessagePort, both ways: `call`
 * resolves with the other side's answer, `notify` expects none. Errors cross as `{code,
 * message}` (SluiceError.toJSON) and are rebuilt; anything else thrown becomes INTERNAL with
 * its detail logged on the side that threw it, never sent. Only named handlers can be called.
 *
 * Control messages only: a request's data never crosses threads by message (a postMessage round
 * trip costs tens of microseconds, more than a whole inline request; docs/io-threads.md).
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import { fromSerialized, SluiceError, toSluiceError, type SerializedError } from '../errors.js';
import { errorFields, log } from '../log.js';

type Handler = (...args: any[]) => unknown;
type Port = Pick<MessagePort, 'postMessage' | 'on' | 'off'> | Pick<Worker, 'postMessage' | 'on' | 'off'>;

type Message =
  | { rpc: 'call'; id: number; op: string; args: unknown[] }
  | { rpc: 'note'; op: string; args: unknown[] }
  | { rpc: 'reply'; id: number; ok: true; value: unknown }
  | { rpc: 'reply'; id: number; ok: false; error: SerializedError };

export class Rpc {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: SluiceError) => void }>();
  private closedWith: SluiceError | undefined;
  private readonly listener = (m: unknown) => this.onMessage(m as Message);

  constructor(private readonly port: Port, private readonly handlers: Record<string, Handler>, private readonly side: string) {
    (port as MessagePort).on('message', this.listener);
  }

  call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.port.postMessage({ rpc: 'call', id, op, args } satisfies Message);
    });
  }

  notify(op: string, ...args: unknown[]): void {
    if (!this.closedWith) this.port.postMessage({ rpc: 'note', op, args } satisfies Message);
  }

  /** Fails every call still waiting (the other side is gone) and stops listening. */
  close(err: SluiceError): void {
    this.closedWith ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    (this.port as MessagePort).off('message', this.listener);
  }

  private onMessage(m: Message): void {
    if (!m || typeof m !== 'object' || !('rpc' in m)) return;
    if (m.rpc === 'reply') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(fromSerialized(m.error));
      return;
    }
    const handler = Object.hasOwn(this.handlers, m.op) ? this.handlers[m.op] : undefined;
    const run = async (): Promise<unknown> => {
      if (!handler) throw new SluiceError('INTERNAL', `no such control operation: ${m.op}`);
      return handler(...m.args);
    };
    const done = run();
    if (m.rpc === 'note') {
      done.catch((e: unknown) => log.error(`${this.side}: control notification failed`, { op: m.op, ...errorFields(e) }));
      return;
    }
    done.then(
      (value) => this.port.postMessage({ rpc: 'reply', id: m.id, ok: true, value } satisfies Message),
      (e: unknown) => {
        const err = toSluiceError(e);
        if (!(e instanceof SluiceError)) log.error(`${this.side}: control call failed`, { op: m.op, ...errorFields(e) });
        this.port.postMessage({ rpc: 'reply', id: m.id, ok: false, error: err.toJSON() } satisfies Message);
      },
    );
  }
}
