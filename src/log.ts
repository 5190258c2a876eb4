/**
 * Structured logging: one JSON object per line on stderr, by pino. Level from SLUICE_LOG_LEVEL
 * (debug, info, warn, error, silent; default info). Callers pass data, never secrets; fields
 * that name a credential are censored all the same (REDACT).
 *
 * The line keeps the shape Sluice has always written, which the launchers, chaos scenarios and
 * tests read: `level` as its name, `t` an ISO time, `msg`, then the data's fields. pino writes
 * each line with one synchronous `process.stderr.write`, so lines are whole and in order, and a
 * worker thread's lines go through its relayed stderr like any other output.
 */
import { pino } from 'pino';

const LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
type LevelName = (typeof LEVELS)[number];

/** Whether SLUICE_LOG_LEVEL=`level` hides info lines (an unknown level means info: it does not). */
export function hidesInfo(level: string): boolean {
  return LEVELS.indexOf(level as LevelName) > LEVELS.indexOf('info');
}

function levelFromEnv(): LevelName {
  const v = process.env.SLUICE_LOG_LEVEL as LevelName | undefined;
  return v !== undefined && LEVELS.includes(v) ? v : 'info';
}

/** Fields censored wherever they appear at the top level or one object down. */
const REDACT = ['authorization', 'password', 'secret', 'token', 'apiKey', '*.authorization', '*.password', '*.secret', '*.token', '*.apiKey'];

const logger = pino(
  {
    level: levelFromEnv(),
    base: undefined,
    messageKey: 'msg',
    timestamp: () => `,"t":"${new Date().toISOString()}"`,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT, censor: '[redacted]' },
  },
  process.stderr,
);

/** Sluice's argument order (message, then data) onto pino's (data, then message). */
const at = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, data?: Record<string, unknown>): void =>
  data === undefined ? logger[level](msg) : logger[level](data, msg);

export const log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };

/** The parts of an error worth logging (message and code; stack only at debug). */
export function errorFields(e: unknown): Record<string, unknown> {
  if (e instanceof Error) {
    return { error: e.message, code: (e as { code?: unknown }).code, ...(logger.isLevelEnabled('debug') ? { stack: e.stack } : {}) };
  }
  return { error: String(e) };
}
