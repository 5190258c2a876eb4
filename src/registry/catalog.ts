/**
 * The registry as the engine's catalog: serve every model's production version; a load
 * without a version loads the production version.
 */
import type { RepositoryEntry, VersionSource } from '../repository/directory.js';
import type { ModelCatalog } from '../service/catalog.js';
import type { Registry } from './registry.js';

export class RegistryCatalog implements ModelCatalog {
  constructor(private readonly registry: Registry) {}

  index(): Promise<RepositoryEntry[]> {
    return this.registry.versionIndex();
  }

  async startup(): Promise<string[]> {
    return [...(await this.registry.productionVersions()).keys()].sort();
  }

  open(name: string, version?: string): Promise<VersionSource> {
    return this.registry.openVersion(name, version);
  }
}
