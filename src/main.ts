/**
 * `npm start`: serves the model repository (the bundled demo models by default) over HTTP and
 * gRPC with the embedded defaults. SIGTERM drains: readiness turns false at once, the listeners
 * keep serving for SLUICE_DRAIN_GRACE_MS, then close, in-flight requests finish, and the process
 * exits 0. Ctrl-C (SIGINT) does the same without the grace period. A second signal exits at once.
 */
import { serveUntilSignalled } from './serve.js';

void serveUntilSignalled();
