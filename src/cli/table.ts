/** Plain-text tables for the command line. */

/**
 * Rows of cells as aligned lines, two spaces apart: the first column left-aligned (names), the
 * others right-aligned (figures). The first row is usually the heading. `leftColumns` widens
 * the left-aligned part to that many leading columns (for tables of text).
 */
export function alignedLines(cells: string[][], leftColumns = 1): string[] {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  return cells.map((c) => c.map((x, i) => (i < leftColumns ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ').trimEnd());
}
