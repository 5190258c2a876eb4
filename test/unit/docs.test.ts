import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { schema } from '../../src/config/index.js';
import { catalogue, Grpc } from '../../src/errors.js';
import { projectRoot } from '../../src/paths.js';

const readme = () => readFile(path.join(projectRoot, 'README.md'), 'utf8');
const grpcName = (n: number) => Object.entries(Grpc).find(([, v]) => v === n)![0];

describe('README matches the code', () => {
  it('documents every error code with its HTTP and gRPC status and retryability', async () => {
    const text = await readme();
    for (const [code, e] of Object.entries(catalogue)) {
      const row = text.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      expect(row, `README has no row for ${code}`).toBeDefined();
      const cells = row!.split('|').map((c) => c.trim());
      expect(cells[2], `${code} HTTP status`).toBe(String(e.http));
      expect(cells[3], `${code} gRPC status`).toBe(grpcName(e.grpc));
      expect(cells[4], `${code} retryable`).toBe(e.retryable ? 'yes' : 'no');
    }
  });

  it('documents every configuration variable', async () => {
    const text = await readme();
    for (const field of Object.values(schema)) expect(text).toContain(`\`${field.env}\``);
  });
});
