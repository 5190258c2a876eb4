/**
 * DESIGN.md's import rules, read from the source: transports (src/frontend) call only the
 * service, never the registry or the routing code (admin routes included: the service wraps the
 * registry); the registry knows no transport; only src/native.ts imports the addon. Type-only
 * imports count too: a transport that needs a registry type gets it from src/service.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';

const src = path.join(projectRoot, 'src');

/** Every module specifier a TypeScript file imports or re-exports (static, type-only, dynamic, side-effect). */
function specifiers(text: string): string[] {
  // Comments may quote import lines; they are not imports.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, // import x from '...', export { y } from '...'
    /\bimport\s*['"]([^'"]+)['"]/g, // import '...'
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, // import('...'), also in type positions
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]!);
  return out;
}

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await tsFiles(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** `file`'s relative imports, as paths from the project root (`src/registry/registry.js`). */
async function importsOf(file: string): Promise<string[]> {
  const rel = specifiers(await readFile(file, 'utf8')).filter((s) => s.startsWith('.'));
  return rel.map((s) => path.relative(projectRoot, path.resolve(path.dirname(file), s)).split(path.sep).join('/'));
}

/** Every import from a file under `from` into one of `banned` (folders or files from the project root). */
async function violations(from: string, banned: string[], exempt: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for (const file of await tsFiles(path.join(projectRoot, from))) {
    const name = path.relative(projectRoot, file).split(path.sep).join('/');
    if (exempt.includes(name)) continue;
    for (const target of await importsOf(file)) {
      if (banned.some((b) => target === b || target.startsWith(`${b}/`))) out.push(`${name} imports ${target}`);
    }
  }
  return out;
}

describe('import rules (DESIGN.md, Layout)', () => {
  it('reads every kind of import, and not the ones in comments', () => {
    const text = [
      "import type { Registry } from '../../registry/registry.js';",
      "import { parseRoute,\n  routeJson } from '../../routing/route.js';",
      "export { x } from './a.js';",
      "export * from './b.js';",
      "import './side-effect.js';",
      "type T = import('./c.js').T;",
      "const m = await import('./d.js');",
      "// import { no } from './comment.js';",
      "/* import { no } from './block.js'; */",
    ].join('\n');
    expect(specifiers(text)).toEqual(['../../registry/registry.js', '../../routing/route.js', './a.js', './b.js', './side-effect.js', './c.js', './d.js']);
  });

  it('transports (src/frontend) import neither the registry nor the routing code: they call the service', async () => {
    expect(await violations('src/frontend', ['src/registry', 'src/routing'])).toEqual([]);
  });

  it('would catch a transport that did (the rule is not vacuous)', async () => {
    // The service and the I/O threads sit between them and do import both.
    expect((await violations('src/service', ['src/registry', 'src/routing'])).length).toBeGreaterThan(0);
  });

  it('the registry knows no transport', async () => {
    expect(await violations('src/registry', ['src/frontend', 'src/io', 'src/cli', 'src/net'])).toEqual([]);
  });

  it('only src/native.ts imports the addon (native/)', async () => {
    expect(await violations('src', ['native'], ['src/native.ts'])).toEqual([]);
    expect(await importsOf(path.join(src, 'native.ts'))).toContain('native/index.js');
  });
});
