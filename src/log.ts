/**
 * Minimal structured logger: one JSON object per line on stderr. Level from SLUICE_LOG_LEVEL
 * (debug, info, warn, error, silent; default info). Callers pass data, never secrets.
 */
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;

/** Whether SLUICE_LOG_LEVEL=`level` hides info lines (an unknown level means info: it does not). */
export function hidesInfo(level: string): boolean {
  return level in LEVELS && LEVELS[level as keyof typeof LEVELS] > LEVELS.info;
}
type Level = Exclude<keyof typeof LEVELS, 'silent'>;

function threshold(): number {
  const v = process.env.SLUICE_LOG_LEVEL as keyof typeof LEVELS | undefined;
  return v && v in LEVELS ? LEVELS[v] : LEVELS.info;
}

const min = threshold();

function write(level: Level, msg: string, data?: Record<string, unknown>): void {
  if (LEVELS[level] < min) return;
  const line = JSON.stringify({ t: new Date().toISOString(), level, msg, ...data });
  process.stderr.write(line + '\n');
}

export const log = {
  debug: (msg: string, data?: Record<string, unknown>) => write('debug', msg, data),
  info: (msg: string, data?: Record<string, unknown>) => write('info', msg, data),
  warn: (msg: string, data?: Record<string, unknown>) => write('warn', msg, data),
  error: (msg: string, data?: Record<string, unknown>) => write('error', msg, data),
};

/** The parts of an error worth logging (message and code; stack only at debug). */
export function errorFields(e: unknown): Record<string, unknown> {
  if (e instanceof Error) {
    return { error: e.message, code: (e as { code?: unknown }).code, ...(min <= LEVELS.debug ? { stack: e.stack } : {}) };
  }
  return { error: String(e) };
}
