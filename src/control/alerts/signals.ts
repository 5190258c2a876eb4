/**
 * Where alert rules read their values: a metric or detector by name, with labels (model,
 * version, ...). The alerts code knows no metric itself; the server plugs in what it has
 * (windowed error rates, p99, drift flags, learner stability, feedback log size: the sources
 * builtin.ts names). A source a Signals does not know reads as undefined: no data, so the
 * condition does not hold (a pending alert goes back to inactive, a firing one resolves, as
 * Prometheus treats a series that went away).
 */
import type { Labels } from './rules.js';

export interface Signals {
  /** The current value of `source` for `labels`; undefined when there is none. */
  read(source: string, labels: Labels): number | undefined | Promise<number | undefined>;
  /**
   * The label sets a rule with `labels` covers, when a rule leaves some out (a built-in rule
   * without `model` covers every model the source has figures of). Without it, or when it
   * answers undefined, the rule is one alert with its own labels. Each set should include the
   * rule's labels.
   */
  expand?(source: string, labels: Labels): Labels[] | undefined | Promise<Labels[] | undefined>;
}

/** Knows no source: every rule reads undefined (what the server uses until sources are wired). */
export const noSignals: Signals = { read: () => undefined };
