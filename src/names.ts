/**
 * The one naming rule for everything a caller names: model names, model versions, API key names.
 * Names become URL path segments, directory names, metric label values, log fields and
 * PostgreSQL text (which cannot hold NUL: error 22021 was once a 500), so one conservative rule
 * covers them all: 1 to 128 characters, ASCII letters, digits and `. _ - + @`, starting with a
 * letter or digit. `+` is there for semantic-version build metadata (`1.0.0+build.5`), `@` for key
 * names like `ci@team`. No `/`, spaces, `%` or control characters, so a name never needs escaping
 * and can never climb out of a directory. README "Names" documents the same rule.
 */
import { SluiceError } from './errors.js';

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+@-]{0,127}$/;

export function isValidName(v: unknown): v is string {
  return typeof v === 'string' && NAME_PATTERN.test(v);
}

/** The error for a name that breaks the rule; `what` names it ("model name"). */
export function invalidName(what: string, code: 'NAME_INVALID' | 'MANIFEST_INVALID' = 'NAME_INVALID'): SluiceError {
  return new SluiceError(code, `${what} must be 1-128 characters of A-Z a-z 0-9 . _ - + @, starting with a letter or digit`);
}

/** Throws NAME_INVALID (400 / INVALID_ARGUMENT) unless `v` follows the rule. */
export function checkName(v: unknown, what: string, code: 'NAME_INVALID' | 'MANIFEST_INVALID' = 'NAME_INVALID'): string {
  if (isValidName(v)) return v;
  throw invalidName(what, code);
}
