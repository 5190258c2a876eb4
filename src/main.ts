/**
 * `npm start`: serves the model repository (the bundled demo models by default) over HTTP and
 * gRPC with the embedded defaults. SIGTERM or Ctrl-C drains: readiness turns false, in-flight
 * requests finish, then the process exits 0. A second signal exits at once.
 */
import { serveUntilSignalled } from './serve.js';

void serveUntilSignalled();
