/**
 * The server's `workspace/executeCommand` commands: their ids, argument lists
 * and the messages their results give the user.
 *
 * Pure logic (no `vscode` import), so it is unit tested under plain Node.
 */

export const SERVER_COMMANDS = {
  loadModel: "ai-ide.loadModel",
  unloadModel: "ai-ide.unloadModel",
  generate: "ai-ide.generate",
  showStatus: "ai-ide.showStatus",
} as const;

/** LSP position (zero-based line and character in the negotiated encoding). */
export interface Position {
  line: number;
  character: number;
}

/** `[model_id]`, or `[]` for the server's choice (the configured model). */
export function modelArguments(modelId: string | undefined): string[] {
  const id = modelId?.trim();
  return id ? [id] : [];
}

export interface GenerateArgument {
  uri: string;
  position: Position;
  prompt?: string;
}

/** `[{uri, position, prompt?}]`; without a prompt the server uses the comment above the cursor. */
export function generateArguments(
  uri: string,
  position: Position,
  prompt: string | undefined,
): [GenerateArgument] {
  const argument: GenerateArgument = { uri, position };
  if (prompt !== undefined && prompt.trim() !== "") {
    argument.prompt = prompt.trim();
  }
  return [argument];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown, fallback: string): string {
  return typeof value === "string" && value !== "" ? value : fallback;
}

/** The message for an `ai-ide.loadModel` result `{model_id, status}`. */
export function describeLoad(result: unknown): string {
  if (!isRecord(result)) {
    return "ai-ide: load requested";
  }
  return `ai-ide: ${text(result.model_id, "model")} is ${text(result.status, "loading")}`;
}

/** The message for an `ai-ide.generate` result `{applied, text}`, or undefined when all went well. */
export function describeGenerate(result: unknown): string | undefined {
  if (!isRecord(result)) {
    return "ai-ide: the server returned no generation result";
  }
  if (result.applied === true) {
    return undefined;
  }
  if (typeof result.text === "string" && result.text.trim() !== "") {
    return "ai-ide: the generated code could not be applied (the document changed?)";
  }
  return "ai-ide: nothing was generated; write a comment above the cursor or give a prompt";
}
