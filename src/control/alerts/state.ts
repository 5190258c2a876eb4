/**
 * One alert's state machine, without I/O: given what the alert was and whether its condition
 * holds now, what it becomes and which notice (if any) is owed.
 *
 *   inactive | resolved --true--> pending (firing at once when for_ms is 0)
 *   pending --true for for_ms--> firing        pending --false--> inactive (no notice: it never fired)
 *   firing --true--> firing (a repeat: no notice again)   firing --false--> resolved
 *
 * Notices: a firing one when it fires (held back while silenced; sent on a later evaluation if
 * the silence ends while it still fires), and a resolved one only for an alert whose firing
 * notice went out (`notified`), so nobody hears "resolved" about something never announced.
 * A silence in force holds back both.
 */
export type AlertState = 'inactive' | 'pending' | 'firing' | 'resolved';

export const ALERT_STATES: readonly AlertState[] = ['inactive', 'pending', 'firing', 'resolved'];

export interface AlertStatus {
  state: AlertState;
  /** Since when the condition has held (pending and firing). */
  activeSince: Date | null;
  firedAt: Date | null;
  resolvedAt: Date | null;
  /** The firing notice of the current (or last) firing went out. */
  notified: boolean;
}

export const INACTIVE: AlertStatus = Object.freeze({ state: 'inactive', activeSince: null, firedAt: null, resolvedAt: null, notified: false });

export interface Step {
  next: AlertStatus;
  /** The state changed (a transition to record). */
  changed: boolean;
  /** The notice to send now (when not silenced). */
  notice: 'firing' | 'resolved' | null;
}

/** The next status of an alert whose condition `holds` (false also when the source has no value) at `now`. */
export function step(prev: AlertStatus, holds: boolean, now: Date, forMs: number, silenced: boolean): Step {
  const s = prev.state;
  if (holds) {
    if (s === 'firing') {
      // A repeat: no new notice, unless the first one was held back by a silence now over.
      if (!prev.notified && !silenced) return { next: { ...prev, notified: true }, changed: false, notice: 'firing' };
      return { next: prev, changed: false, notice: null };
    }
    const activeSince = s === 'pending' && prev.activeSince ? prev.activeSince : now;
    if (now.getTime() - activeSince.getTime() >= forMs) {
      return { next: { state: 'firing', activeSince, firedAt: now, resolvedAt: null, notified: !silenced }, changed: true, notice: silenced ? null : 'firing' };
    }
    if (s === 'pending') return { next: prev, changed: false, notice: null };
    return { next: { state: 'pending', activeSince, firedAt: prev.firedAt, resolvedAt: prev.resolvedAt, notified: false }, changed: true, notice: null };
  }
  if (s === 'pending') return { next: { ...prev, state: 'inactive', activeSince: null }, changed: true, notice: null };
  if (s === 'firing') {
    // Owed to whoever heard it fire; a silence in force holds it back like any other notice.
    return { next: { ...prev, state: 'resolved', activeSince: null, resolvedAt: now }, changed: true, notice: prev.notified && !silenced ? 'resolved' : null };
  }
  return { next: prev, changed: false, notice: null };
}
