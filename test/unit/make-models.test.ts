import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { tempRepo } from '../helpers/repo.js';

describe('bundled models and ONNX fixtures', () => {
  it('are reproduced byte for byte by scripts/make-models.mjs', async () => {
    const { root, cleanup } = await tempRepo();
    try {
      execFileSync(process.execPath, [path.join(projectRoot, 'scripts/make-models.mjs'), '--out', root]);
      for (const f of [
        'models/demo-logistic/1/model.json',
        'models/demo-logistic/1/weights.json',
        'models/demo-onnx/1/model.json',
        'models/demo-onnx/1/model.onnx',
        'models/demo-bandit/1/model.json',
        'models/demo-bandit/1/arms.json',
        'test/fixtures/onnx/add_mul.onnx',
        'test/fixtures/onnx/double_int64.onnx',
      ]) {
        expect(Buffer.compare(await readFile(path.join(root, f)), await readFile(path.join(projectRoot, f))), f).toBe(0);
      }
    } finally {
      await cleanup();
    }
  });

  it('demo-logistic has the documented weights', async () => {
    const doc = JSON.parse(await readFile(path.join(projectRoot, 'models/demo-logistic/1/weights.json'), 'utf8'));
    expect(doc.bias).toEqual([0.25]);
    expect(doc.weights[0]).toHaveLength(100);
    doc.weights[0].forEach((w: number, i: number) => expect(w).toBe(((i % 7) - 3) / 10));
  });
});
