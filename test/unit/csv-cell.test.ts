import { describe, expect, it } from 'vitest';
import { parseCell } from '../../src/cli/rows.js';
import { mulberry32 } from '../helpers/random.js';

const parse = (s: string) => parseCell(s, 0, s.length);

describe('CSV cell parsing (sluice predict)', () => {
  it('equals Number() exactly on random decimals of every length', () => {
    const r = mulberry32(77);
    for (let k = 0; k < 200_000; k++) {
      const digits = 1 + Math.floor(r() * 17);
      let s = '';
      for (let i = 0; i < digits; i++) s += Math.floor(r() * 10);
      const dot = Math.floor(r() * (digits + 1));
      if (dot < digits) s = s.slice(0, dot) + '.' + s.slice(dot);
      if (r() < 0.3) s = '-' + s;
      if (s.startsWith('.') || s.startsWith('-.')) s = s.replace('.', '0.');
      expect(Object.is(parse(s), Number(s)), s).toBe(true);
    }
  });

  it('handles exponents, signs, spaces and non-numbers like Number(), and empty as NaN', () => {
    for (const s of ['1e5', '-2.5E-3', '+7', ' 3.25 ', '0x10', 'Infinity', 'abc', '1.2.3', '12a']) {
      expect(Object.is(parse(s), Number(s)), s).toBe(true);
    }
    expect(parse('')).toBeNaN();
    expect(parse('-')).toBeNaN();
  });
});
