/**
 * Holm-Bonferroni step-down adjusted p-values, as statsmodels
 * multipletests(p, method='holm')[1]: sort ascending, adjusted_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
 * Controls the family-wise error rate under any dependence, and is uniformly more powerful than
 * Bonferroni. null entries (untestable comparisons) stay null and do not count in m.
 */
export function holm(pValues: readonly (number | null)[]): (number | null)[] {
  const tested: { p: number; index: number }[] = [];
  pValues.forEach((p, index) => {
    if (p !== null) {
      if (!(p >= 0 && p <= 1)) throw new Error(`holm: p-value ${p} at ${index} is not in [0, 1]`);
      tested.push({ p, index });
    }
  });
  tested.sort((a, b) => a.p - b.p || a.index - b.index);
  const out: (number | null)[] = pValues.map(() => null);
  const m = tested.length;
  let running = 0;
  tested.forEach(({ p, index }, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p));
    out[index] = running;
  });
  return out;
}
