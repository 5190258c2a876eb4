// In-process CPU per inline inferNow call (demo-logistic, single row) of one tree's dist.
// usage: node scripts/ab/inline-infer-cpu.mjs <tree> [model repository]
const tree = process.argv[2];
const { Engine } = await import(`${tree}/dist/src/service/engine.js`);
const engine = await Engine.start({ modelRepository: process.argv[3] ?? `${tree}/models`, workers: 0, startupModels: ['demo-logistic'] });
const data = new Float32Array(100).fill(0.01);
const req = () => ({ model: 'demo-logistic', version: undefined, id: undefined, inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data }], outputs: undefined, deadline: undefined });
for (let i = 0; i < 200_000; i++) engine.inferNow(req());
const N = 1_000_000;
const c0 = process.cpuUsage();
let s = 0;
for (let i = 0; i < N; i++) s += engine.inferNow(req()).outputs[0].data[0];
const c = process.cpuUsage(c0);
console.log(JSON.stringify({ tree, repo: process.argv[3], nsPerCall: ((c.user + c.system) * 1000) / N, check: s / N }));
await engine.close();
