/**
 * Refusing a refactoring computed for an older version of its document.
 *
 * The server computes a code action's edit on the text it has, names that
 * version in the edit and in the action's `data`, and VS Code would apply the
 * edit to whatever text the editor has by then. If the versions differ (the
 * user typed while the model ran, or the server missed a change), the edit is
 * dropped and the user told, rather than corrupting the file.
 *
 * Pure logic (no `vscode` import), so it is unit tested under plain Node.
 */

/** What the server puts in a code action's `data`. */
export interface ActionData {
  uri: string;
  version: number;
}

export function actionData(data: unknown): ActionData | undefined {
  if (typeof data !== "object" || data === null) {
    return undefined;
  }
  const { uri, version } = data as Record<string, unknown>;
  if (typeof uri !== "string" || typeof version !== "number") {
    return undefined;
  }
  return { uri, version };
}

/**
 * Why the edit of action `title` must not be applied, or undefined when it
 * may: `current` is the open document's version (undefined: not open).
 */
export function staleEditMessage(title: string, data: ActionData | undefined, current: number | undefined): string | undefined {
  if (data === undefined || current === data.version) {
    return undefined;
  }
  return `ai-ide: ${title} not applied: the file changed while it was computed; try again`;
}
