// PLACEHOLDER (lead): replaced by branch `routes` at merge.
export interface Variant { name: string; version: string; weight: number }
export interface Shadow { version: string; fraction: number }
export interface RouteSpec { variants: Variant[]; assignment: 'hash' | 'random'; salt: string; shadows: Shadow[]; logFeatures: boolean }
export function routeVersions(spec: RouteSpec): string[] {
  return [...new Set([...spec.variants.map((v) => v.version), ...spec.shadows.map((s) => s.version)])];
}
