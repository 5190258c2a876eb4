/**
 * Where the engine finds model versions: the model repository directory (the embedded default
 * for a bare engine), or the registry (what `npm start` and `sluice serve` use).
 */
import type { RepositoryEntry, VersionSource } from '../repository/directory.js';

export interface ModelCatalog {
  /** Models and their versions (the repository index). */
  index(): Promise<RepositoryEntry[]>;
  /** Models to serve at start. */
  startup(): Promise<string[]>;
  /** A version to load: the named one, or the one this catalog serves by default. */
  open(name: string, version?: string): Promise<VersionSource>;
}
