/**
 * How this replica's engine follows the registry: the production version of each model it
 * serves, and routes cleared. One rule matters here: a route cleared together with a promotion
 * (a canary or blue-green reaching 100%, an experiment's winner) must not hand traffic back to
 * the version the promotion replaced, not even for the moment between the two changes reaching
 * this replica. So a route is cleared only after the registry's production version is the
 * engine's default (loading it first if needed); until then the route keeps serving the
 * candidate. Both the watcher (changes made anywhere) and this replica's own control loops
 * (changes made here) come through these two functions.
 */
import type { Db } from '../registry/db.js';
import { productionVersion } from '../registry/queries.js';
import type { Registry } from '../registry/registry.js';
import type { Engine } from '../service/engine.js';

export interface RegistryFollower {
  /** Makes `version` the model's default here (a no-op if it is; one load at a time per version). */
  followProduction(model: string, version: string): Promise<void>;
  /** Clears the model's route here, after the registry's production version is the default. */
  clearRoute(model: string): Promise<void>;
}

export function registryFollower(db: Db, registry: Registry, engine: Engine, serving: (model: string) => boolean): RegistryFollower {
  // The watcher and a control loop may ask for the same version at once: one load serves both.
  const loading = new Map<string, Promise<void>>();
  const followProduction = (model: string, version: string): Promise<void> => {
    if (!serving(model) || engine.isDefault(model, version)) return Promise.resolve();
    const key = `${model}\0${version}`;
    let p = loading.get(key);
    if (!p) {
      p = (async () => {
        await engine.loadVersion(await registry.openVersion(model, version));
      })().finally(() => loading.delete(key));
      loading.set(key, p);
    }
    return p;
  };
  return {
    followProduction,
    async clearRoute(model) {
      if (!engine.hasModel(model) || !engine.liveVersions(model).route) return;
      const production = await productionVersion(db, model);
      if (production !== undefined) await followProduction(model, production);
      if (engine.hasModel(model) && engine.liveVersions(model).route) await engine.setRoute(model, undefined);
    },
  };
}
