// Text for people, shared by both halves: an API message on one line, and kubectl-style columns
// (the CLI's tables and the agent's own `ps` and `info` tables). Pure; imports nothing.

/** An API or container message (a status or termination message) on one line. */
export const oneLine = (text: string | undefined) => (text ?? '').replace(/\s+/g, ' ').trim();

/**
 * Left-aligned columns, like `kubectl get`: each as wide as its widest cell, `gap` spaces apart;
 * the last column is not padded and no line ends in blanks.
 */
export function formatTable(header: string[], rows: string[][], gap = 2): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join(' '.repeat(gap))
      .trimEnd();
  return [header, ...rows].map(line).join('\n') + '\n';
}

/** How often each value occurs, most frequent first, ties in name order: what a summary line counts. */
export function tally(values: Iterable<string>): Array<[value: string, count: number]> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
}
