// The engine and HTTP front end of one tree's dist (no registry), for CPU-per-request A/B runs.
// usage: node scripts/ab/serve-engine-http.mjs <tree> <port> [model repository]
const [tree, port] = [process.argv[2], Number(process.argv[3])];
const { Engine } = await import(`${tree}/dist/src/service/engine.js`);
const { HttpServer } = await import(`${tree}/dist/src/frontend/http/server.js`);
const engine = await Engine.start({ modelRepository: process.argv[4] ?? `${tree}/models`, workers: 1, startupModels: ['demo-logistic'] });
const server = new HttpServer(engine, { serverVersion: 'bench' });
await server.listen('127.0.0.1', port);
console.log('ready');
process.on('SIGTERM', async () => { await server.close(100); await engine.close(); process.exit(0); });
