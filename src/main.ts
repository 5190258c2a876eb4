/**
 * `npm start`: serves the model repository (the bundled demo models by default) over HTTP and
 * gRPC with the embedded defaults. SIGTERM or Ctrl-C drains: readiness turns false, in-flight requests
 * finish, then the process exits 0. A second signal exits at once.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from './config/index.js';
import { errorFields, log } from './log.js';
import { GrpcServer } from './frontend/grpc/server.js';
import { HttpServer } from './frontend/http/server.js';
import { projectRoot } from './paths.js';
import { Engine } from './service/engine.js';

const version = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;

async function main(): Promise<void> {
  const config = loadConfig();
  const engine = await Engine.start(config);
  const http = new HttpServer(engine, { serverVersion: version });
  const grpc = new GrpcServer(engine, { serverVersion: version });
  const port = await http.listen(config.httpHost, config.httpPort);
  const grpcPort = await grpc.listen(config.grpcHost, config.grpcPort);
  const models = (await engine.repositoryIndex()).filter((m) => m.state === 'READY').map((m) => `${m.name}@${m.version}`);
  log.info('sluice: serving', { url: `http://${config.httpHost}:${port}`, grpc: `${config.grpcHost}:${grpcPort}`, models });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn('sluice: second signal, exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('sluice: draining', { signal, inFlight: http.ctx.inFlight + grpc.inFlight });
    await Promise.all([http.close(config.drainTimeoutMs), grpc.close(config.drainTimeoutMs)]);
    await engine.close();
    log.info('sluice: stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((e: unknown) => {
  log.error('sluice: failed to start', errorFields(e));
  process.exit(1);
});
