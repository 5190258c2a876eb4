import { describe, expect, it } from 'vitest';
import { checkDepth, parseJsonBody } from '../../src/frontend/codec/safe-json.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const code = (f: () => unknown) => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

describe('JSON depth limit', () => {
  it('accepts nesting exactly at the limit and refuses one deeper, for arrays and objects', () => {
    for (const [open, close] of [['[', ']'], ['{"a":', '}']] as const) {
      const at = open.repeat(8) + '1' + close.repeat(8);
      const over = open.repeat(9) + '1' + close.repeat(9);
      expect(code(() => checkDepth(bytes(at), 8))).toBeUndefined();
      expect(code(() => checkDepth(bytes(over), 8))).toBe('JSON_TOO_DEEP');
    }
  });

  it('counts depth, not brackets: many shallow brackets pass the full scan', () => {
    // 100 sibling arrays: more opening brackets than the limit (no fast path), depth 2.
    const wide = '[' + Array.from({ length: 100 }, () => '[1]').join(',') + ']';
    expect(code(() => checkDepth(bytes(wide), 8))).toBeUndefined();
  });

  it('ignores brackets inside strings, including escaped quotes', () => {
    const s = `{"a": "${'[{'.repeat(50)}\\"${'['.repeat(50)}", "b": [[1]]}`;
    expect(code(() => checkDepth(bytes(s), 3))).toBeUndefined();
    expect(code(() => checkDepth(bytes(s), 1))).toBe('JSON_TOO_DEEP');
  });

  it('parseJsonBody: depth, UTF-8 and syntax errors have their own codes', () => {
    expect(parseJsonBody(bytes('{"x":[1,2]}'), 4)).toEqual({ x: [1, 2] });
    expect(code(() => parseJsonBody(bytes('[[[[[1]]]]]'), 4))).toBe('JSON_TOO_DEEP');
    expect(code(() => parseJsonBody(new Uint8Array([0x7b, 0xff, 0x7d]), 4))).toBe('INVALID_UTF8');
    expect(code(() => parseJsonBody(bytes('{"x":'), 4))).toBe('MALFORMED_REQUEST');
  });
});
