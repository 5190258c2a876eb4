/** API key scopes and what each allows. `admin` includes the others. */
export const SCOPES = ['predict', 'feedback', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(s: unknown): s is Scope {
  return typeof s === 'string' && (SCOPES as readonly string[]).includes(s);
}

/** Whether a key holding `scopes` may do what `needed` guards. */
export function allows(scopes: readonly Scope[], needed: Scope): boolean {
  return scopes.includes(needed) || scopes.includes('admin');
}
