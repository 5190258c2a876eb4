#!/usr/bin/env node
/**
 * Writes the bundled demo models and the ONNX test fixtures, byte for byte reproducibly
 * (weights come from a seeded PRNG; the ONNX protobuf is encoded here, no Python needed).
 *
 *   node scripts/make-models.mjs            # (re)write models/ and test/fixtures/onnx/
 *   node scripts/make-models.mjs --out DIR  # write into DIR instead (the test compares bytes)
 *
 * ONNX field numbers follow onnx/onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto,
 * ValueInfoProto, TypeProto, TensorShapeProto, AttributeProto).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outArg = process.argv.indexOf('--out');
const outRoot = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : root;

// ---- minimal protobuf writer --------------------------------------------------------------
function varint(n) {
  const out = [];
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n; // two's complement for negative int64
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}
const key = (field, wire) => varint((field << 3) | wire);
const fInt = (field, n) => Buffer.concat([key(field, 0), varint(n)]);
const fBytes = (field, bytes) => Buffer.concat([key(field, 2), varint(bytes.length), bytes]);
const fStr = (field, s) => fBytes(field, Buffer.from(s, 'utf8'));
const fMsg = (field, parts) => fBytes(field, Buffer.concat(parts));
const fFloat = (field, x) => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  return Buffer.concat([key(field, 5), b]);
};

const FLOAT = 1;
const INT64 = 7;

function tensorProto(name, dims, values) {
  const raw = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => raw.writeFloatLE(v, i * 4));
  return [...dims.map((d) => fInt(1, d)), fInt(2, FLOAT), fStr(8, name), fBytes(9, raw)];
}

/** ValueInfoProto for a tensor; `dims` entries are numbers or symbolic names. */
function valueInfo(name, elemType, dims) {
  const dimMsgs = dims.map((d) => fMsg(1, [typeof d === 'number' ? fInt(1, d) : fStr(2, d)]));
  const shape = fMsg(2, dimMsgs);
  const tensorType = fMsg(1, [fInt(1, elemType), shape]);
  return [fStr(1, name), fMsg(2, [tensorType])];
}

function attrInt(name, v) {
  return fMsg(5, [fStr(1, name), fInt(3, v), fInt(20, 2 /* INT */)]);
}

function node(op, inputs, outputs, name, attrs = []) {
  return [...inputs.map((s) => fStr(1, s)), ...outputs.map((s) => fStr(2, s)), fStr(3, name), fStr(4, op), ...attrs];
}

function model({ graphName, nodes, initializers, inputs, outputs }) {
  const graph = [
    ...nodes.map((n) => fMsg(1, n)),
    fStr(2, graphName),
    ...initializers.map((t) => fMsg(5, t)),
    ...inputs.map((v) => fMsg(11, v)),
    ...outputs.map((v) => fMsg(12, v)),
  ];
  return Buffer.concat([
    fInt(1, 8), // ir_version 8
    fStr(2, 'sluice-make-models'),
    fStr(3, '1'),
    fMsg(7, graph),
    fMsg(8, [fStr(1, ''), fInt(2, 13)]), // opset_import: default domain, opset 13
  ]);
}

// ---- deterministic weights ----------------------------------------------------------------
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** Uniform in [-scale, scale], rounded to float32 so JSON and binary agree exactly. */
function weights(n, seed, scale) {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => Math.fround((r() * 2 - 1) * scale));
}

// ---- writers ------------------------------------------------------------------------------
const sha256 = (b) => createHash('sha256').update(b).digest('hex');

function write(file, bytes) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes);
}

function writeModel(dir, manifest, payloadName, payload) {
  write(path.join(dir, payloadName), payload);
  const m = { ...manifest, payload: { file: payloadName, sha256: sha256(payload) } };
  write(path.join(dir, 'model.json'), JSON.stringify(m, null, 2) + '\n');
}

const FEATURES = 100;
const featuresSpec = { name: 'features', datatype: 'FP32', shape: [-1, FEATURES] };

// demo-logistic: w[i] = ((i % 7) - 3) / 10, bias 0.25 (documented so any client can check).
{
  const w = Array.from({ length: FEATURES }, (_, i) => ((i % 7) - 3) / 10);
  const payload = Buffer.from(JSON.stringify({ weights: [w], bias: [0.25] }) + '\n');
  writeModel(path.join(outRoot, 'models/demo-logistic/1'), {
    name: 'demo-logistic',
    version: '1',
    kind: 'logistic',
    signature: { inputs: [featuresSpec], outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }] },
    max_batch_size: 1024,
    dynamic_batching: { max_queue_delay_us: 0, max_queue_size: 4096 },
  }, 'weights.json', payload);
}

// demo-onnx: MLP 100 -> 32 (ReLU) -> 1 (sigmoid), Gemm with transB = 1.
{
  const H = 32;
  const onnx = model({
    graphName: 'demo_mlp',
    nodes: [
      node('Gemm', ['features', 'W1', 'B1'], ['h'], 'fc1', [attrInt('transB', 1)]),
      node('Relu', ['h'], ['hr'], 'relu1'),
      node('Gemm', ['hr', 'W2', 'B2'], ['logit'], 'fc2', [attrInt('transB', 1)]),
      node('Sigmoid', ['logit'], ['probability'], 'out'),
    ],
    initializers: [
      tensorProto('W1', [H, FEATURES], weights(H * FEATURES, 1, 0.2)),
      tensorProto('B1', [H], weights(H, 2, 0.1)),
      tensorProto('W2', [1, H], weights(H, 3, 0.5)),
      tensorProto('B2', [1], weights(1, 4, 0.1)),
    ],
    inputs: [valueInfo('features', FLOAT, ['batch', FEATURES])],
    outputs: [valueInfo('probability', FLOAT, ['batch', 1])],
  });
  writeModel(path.join(outRoot, 'models/demo-onnx/1'), {
    name: 'demo-onnx',
    version: '1',
    kind: 'onnx',
    signature: { inputs: [featuresSpec], outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }] },
    max_batch_size: 1024,
    dynamic_batching: { max_queue_delay_us: 0, max_queue_size: 4096 },
  }, 'model.onnx', onnx);
}

// demo-bandit: LinUCB over 5 arms with the 100 features as context; it starts from the prior
// (A = I, b = 0) and learns from feedback (`npm run demo -- bandit`).
{
  const ARMS = 5;
  const payload = Buffer.from(JSON.stringify({ arms: Array.from({ length: ARMS }, (_, i) => `arm-${i}`) }) + '\n');
  writeModel(path.join(outRoot, 'models/demo-bandit/1'), {
    name: 'demo-bandit',
    version: '1',
    kind: 'linucb',
    signature: {
      inputs: [featuresSpec],
      outputs: [
        { name: 'action', datatype: 'INT32', shape: [-1, 1] },
        { name: 'propensity', datatype: 'FP32', shape: [-1, 1] },
        { name: 'scores', datatype: 'FP32', shape: [-1, ARMS] },
      ],
    },
    max_batch_size: 64,
    dynamic_batching: { max_queue_delay_us: 0, max_queue_size: 4096 },
    parameters: { alpha: 0.5, lambda: 1, min_propensity: 0.01, learning: { batch_size: 256, interval_ms: 100 } },
  }, 'arms.json', payload);
}

// Test fixture: two inputs and two outputs (sum and product), exercising multi-tensor layouts.
{
  const onnx = model({
    graphName: 'add_mul',
    nodes: [node('Add', ['a', 'b'], ['sum'], 'add'), node('Mul', ['a', 'b'], ['product'], 'mul')],
    initializers: [],
    inputs: [valueInfo('a', FLOAT, ['batch', 4]), valueInfo('b', FLOAT, ['batch', 4])],
    outputs: [valueInfo('sum', FLOAT, ['batch', 4]), valueInfo('product', FLOAT, ['batch', 4])],
  });
  write(path.join(outRoot, 'test/fixtures/onnx/add_mul.onnx'), onnx);
}

// Test fixture: INT64 in and out (x * 2), for non-float datatypes through ORT and the arena.
{
  const two = Buffer.alloc(8);
  two.writeBigInt64LE(2n);
  const onnx = model({
    graphName: 'double_int64',
    nodes: [node('Mul', ['x', 'two'], ['y'], 'mul')],
    initializers: [[fInt(1, 1), fInt(2, INT64), fStr(8, 'two'), fBytes(9, two)]],
    inputs: [valueInfo('x', INT64, ['batch', 3])],
    outputs: [valueInfo('y', INT64, ['batch', 3])],
  });
  write(path.join(outRoot, 'test/fixtures/onnx/double_int64.onnx'), onnx);
}

console.log(`models written under ${outRoot}`);
