/**
 * Inline completion items from the server, as VS Code needs them.
 *
 * The server sends a range only when an item replaces text; an item without
 * one is inserted at the cursor (LSP). VS Code reads a missing range as "the
 * word at the cursor", so a suggestion after `square(x` would have to start
 * with `x` to be shown: items without a range get the empty range at the cursor.
 *
 * Pure logic (no `vscode` import), so it is unit tested under plain Node.
 */

export interface Ranged<R> {
  range?: R;
}

/** Gives every item without a range `cursor()` (an empty range at the cursor); returns `result`. */
export function insertAtCursor<R, L extends { items: Ranged<R>[] } | Ranged<R>[] | null | undefined>(
  result: L,
  cursor: () => R,
): L {
  const items: Ranged<R>[] = Array.isArray(result) ? result : (result?.items ?? []);
  for (const item of items) {
    if (item.range === undefined) {
      item.range = cursor();
    }
  }
  return result;
}
