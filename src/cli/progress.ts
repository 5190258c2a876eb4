/** A one-line progress display on stderr: a bar when the total is known, counts otherwise. */
export class Progress {
  private last = 0;
  private readonly start = performance.now();
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly label: string) {}

  /** Redraws at most every 200 ms on a terminal (every 2 s otherwise, one line each). */
  update(done: number, unit: string, fraction?: number): void {
    const now = performance.now();
    if (now - this.last < (this.tty ? 200 : 2000)) return;
    this.last = now;
    const rate = done / ((now - this.start) / 1000);
    let line = `${this.label}: ${done.toLocaleString('en-US')} ${unit} (${Math.round(rate).toLocaleString('en-US')}/s)`;
    if (fraction !== undefined) {
      const width = 30;
      const filled = Math.round(Math.min(1, fraction) * width);
      const eta = fraction > 0 ? ((now - this.start) / 1000) * (1 / fraction - 1) : 0;
      line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(1)}% ${done.toLocaleString('en-US')} ${unit} ${Math.round(rate).toLocaleString('en-US')}/s ETA ${eta.toFixed(0)}s`;
    }
    process.stderr.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`);
  }

  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}
