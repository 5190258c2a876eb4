/** Every scenario, in the order `all` runs them. A new scenario is one file here and one line below. */
import type { Scenario } from '../scenario.js';
import { diskFull } from './disk-full.js';
import { killRestart } from './kill-restart.js';
import { overload } from './overload.js';
import { postgresDown } from './postgres-down.js';
import { s3Down } from './s3-down.js';
import { sigterm } from './sigterm.js';
import { slowModel } from './slow-model.js';
import { swapStorm } from './swap-storm.js';
import { workerCrash } from './worker-crash.js';

export const scenarios: Scenario[] = [workerCrash, swapStorm, slowModel, killRestart, postgresDown, s3Down, overload, sigterm, diskFull];
