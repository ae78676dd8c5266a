/**
 * The extension's settings, validated, and what follows from them: the
 * server's command line, its settings object and the document selector.
 *
 * Pure logic (no `vscode` import), so it is unit tested under plain Node.
 */

/** The languages the server has grammars and prompts for (VS Code language ids). */
export const DEFAULT_LANGUAGES: Readonly<Record<string, boolean>> = {
  rust: true,
  python: true,
  typescript: true,
  typescriptreact: true,
  javascript: true,
  go: true,
  java: true,
};

export interface SidecarSettings {
  enabled: boolean;
  port: number;
}

export interface Settings {
  /** The program that starts the language server, then its arguments. */
  command: string[];
  /** Completion model id; undefined: the server's default. */
  model: string | undefined;
  maxTokens: number;
  /** Completion on or off per language id. */
  languages: Record<string, boolean>;
  sidecar: SidecarSettings;
}

export const DEFAULTS: Readonly<Settings> = Object.freeze({
  command: ["ai-ide", "lsp"],
  model: undefined,
  maxTokens: 64,
  languages: { ...DEFAULT_LANGUAGES },
  sidecar: { enabled: true, port: 8765 },
});

export const MAX_TOKENS_LIMIT = 1024;

/** Reads one setting below the `aiIde` section, as `WorkspaceConfiguration.get` does. */
export type SettingsReader = (key: string) => unknown;

export interface ReadResult {
  settings: Settings;
  /** One line per rejected value, for the user; the default was used instead. */
  problems: string[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isIntegerIn(value: unknown, low: number, high: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= low && value <= high;
}

function readCommand(raw: unknown, problems: string[]): string[] {
  if (raw === undefined || raw === null) {
    return [...DEFAULTS.command];
  }
  if (typeof raw === "string" && raw.trim() !== "") {
    // A plain string is accepted for convenience: split on whitespace (no quoting).
    return raw.trim().split(/\s+/);
  }
  if (Array.isArray(raw) && raw.every((part): part is string => typeof part === "string")) {
    const [program] = raw;
    if (program !== undefined && program.trim() !== "") {
      return [...raw];
    }
  }
  problems.push("aiIde.server.command must be a program followed by its arguments");
  return [...DEFAULTS.command];
}

function readModel(raw: unknown, problems: string[]): string | undefined {
  if (raw === undefined || raw === null) {
    return undefined;
  }
  if (typeof raw === "string") {
    return raw.trim() === "" ? undefined : raw.trim();
  }
  problems.push("aiIde.model must be a model id");
  return undefined;
}

function readMaxTokens(raw: unknown, problems: string[]): number {
  if (raw === undefined || raw === null) {
    return DEFAULTS.maxTokens;
  }
  if (isIntegerIn(raw, 1, MAX_TOKENS_LIMIT)) {
    return raw;
  }
  problems.push(`aiIde.maxTokens must be an integer from 1 to ${MAX_TOKENS_LIMIT}`);
  return DEFAULTS.maxTokens;
}

function readLanguages(raw: unknown, problems: string[]): Record<string, boolean> {
  // Entries are merged over the defaults: a language is turned off with `false`.
  const languages: Record<string, boolean> = { ...DEFAULT_LANGUAGES };
  if (raw === undefined || raw === null) {
    return languages;
  }
  if (!isRecord(raw)) {
    problems.push("aiIde.languages must map language ids to true or false");
    return languages;
  }
  for (const [language, enabled] of Object.entries(raw)) {
    if (typeof enabled === "boolean") {
      languages[language] = enabled;
    } else {
      problems.push(`aiIde.languages.${language} must be true or false`);
    }
  }
  return languages;
}

function readSidecar(enabled: unknown, port: unknown, problems: string[]): SidecarSettings {
  const sidecar = { ...DEFAULTS.sidecar };
  if (typeof enabled === "boolean") {
    sidecar.enabled = enabled;
  } else if (enabled !== undefined && enabled !== null) {
    problems.push("aiIde.sidecar.enabled must be true or false");
  }
  if (isIntegerIn(port, 1, 65535)) {
    sidecar.port = port;
  } else if (port !== undefined && port !== null) {
    problems.push("aiIde.sidecar.port must be a TCP port (1-65535)");
  }
  return sidecar;
}

/** Validated settings; an invalid value gives its default and a problem line. */
export function readSettings(get: SettingsReader): ReadResult {
  const problems: string[] = [];
  const settings: Settings = {
    command: readCommand(get("server.command"), problems),
    model: readModel(get("model"), problems),
    maxTokens: readMaxTokens(get("maxTokens"), problems),
    languages: readLanguages(get("languages"), problems),
    sidecar: readSidecar(get("sidecar.enabled"), get("sidecar.port"), problems),
  };
  return { settings, problems };
}

export interface ServerCommand {
  command: string;
  args: string[];
}

function hasSidecarFlag(args: readonly string[]): boolean {
  return args.some(
    (arg) => arg === "--no-http" || arg === "--http-port" || arg.startsWith("--http-port="),
  );
}

/**
 * The process to spawn: the configured command plus `--http-port N` or
 * `--no-http` from the sidecar settings, unless the command already chose.
 */
export function serverCommand(settings: Settings): ServerCommand {
  const [command = "ai-ide", ...args] = settings.command;
  if (!hasSidecarFlag(args)) {
    if (settings.sidecar.enabled) {
      args.push("--http-port", String(settings.sidecar.port));
    } else {
      args.push("--no-http");
    }
  }
  return { command, args };
}

/** The settings object the server reads (initializationOptions and section "aiIde"). */
export interface ServerSettings {
  model?: string;
  maxTokens: number;
  languages: Record<string, boolean>;
  sidecar: SidecarSettings;
}

export function serverSettings(settings: Settings): ServerSettings {
  const result: ServerSettings = {
    maxTokens: settings.maxTokens,
    languages: { ...settings.languages },
    sidecar: { ...settings.sidecar },
  };
  // Omitted rather than null: the server then keeps its configured default model.
  if (settings.model !== undefined) {
    result.model = settings.model;
  }
  return result;
}

export interface DocumentFilter {
  scheme: string;
  language: string;
}

/**
 * Documents the client sends to the server: every listed language, on or off
 * (a language that is off still gets code actions and commands; the server
 * skips its completions), saved files and untitled buffers.
 */
export function documentSelector(settings: Settings): DocumentFilter[] {
  const selector: DocumentFilter[] = [];
  for (const language of Object.keys(settings.languages).sort()) {
    selector.push({ scheme: "file", language }, { scheme: "untitled", language });
  }
  return selector;
}

/**
 * Whether a settings change needs a new server process: the command line or
 * the set of documents changed. Model, token and on/off changes do not; the
 * server reads them again through `workspace/didChangeConfiguration`.
 */
export function needsRestart(before: Settings, after: Settings): boolean {
  return (
    JSON.stringify(serverCommand(before)) !== JSON.stringify(serverCommand(after)) ||
    JSON.stringify(documentSelector(before)) !== JSON.stringify(documentSelector(after))
  );
}
