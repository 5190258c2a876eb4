// PLACEHOLDER (lead): replaced by branch `routes` at merge.
import type { RouteSpec } from './route.js';
export class Assigner {
  private readonly cum: number[] = [];
  private readonly p: number[] = [];
  constructor(private readonly spec: RouteSpec) {
    const total = spec.variants.reduce((a, v) => a + v.weight, 0);
    let c = 0;
    for (const v of spec.variants) { c += v.weight / total; this.cum.push(c); this.p.push(v.weight / total); }
  }
  pick(unitId: string | undefined, random: () => number = Math.random): { index: number; propensity: number } {
    let u = random();
    if (unitId !== undefined && this.spec.assignment === 'hash') {
      let h = 0x811c9dc5;
      const s = this.spec.salt + ':' + unitId;
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
      h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
      u = (h >>> 0) / 2 ** 32;
    }
    let i = 0;
    while (i < this.cum.length - 1 && u >= this.cum[i]!) i++;
    return { index: i, propensity: this.p[i]! };
  }
  shadowPick(i: number, random: () => number = Math.random): boolean {
    return random() < this.spec.shadows[i]!.fraction;
  }
}
