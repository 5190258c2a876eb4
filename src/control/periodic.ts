/**
 * A task every control-plane loop runs the same way: every `intervalMs` after the previous run
 * ended (runs never overlap; a slow database delays the next, it never stacks them), a failed run
 * logged and tried again next interval, the timer never keeping the process alive, and close()
 * waiting for the run in progress.
 */
import { errorFields, log } from '../log.js';

export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** `failed` is the log line of a failed run, e.g. 'alerts: evaluation failed (retried next interval)'. */
  constructor(private readonly intervalMs: number, private readonly run: () => Promise<unknown>, private readonly failed: string) {}

  start(): void {
    const next = () => {
      if (this.closed) return;
      this.timer = setTimeout(() => {
        this.running = this.run().catch((e) => log.warn(this.failed, errorFields(e))).finally(next);
      }, this.intervalMs);
      this.timer.unref?.();
    };
    next();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
