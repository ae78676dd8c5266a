/**
 * Model state as the server reports it (`ai-ide/modelStatus` notifications and
 * the `ai-ide.showStatus` result), and how the status bar renders it.
 *
 * Pure logic (no `vscode` import), so it is unit tested under plain Node.
 */

export const MODEL_STATUS_NOTIFICATION = "ai-ide/modelStatus";

export const MODEL_STATES = ["available", "loading", "loaded", "unloading", "error"] as const;
export type ModelState = (typeof MODEL_STATES)[number];

/** Params of `ai-ide/modelStatus`. */
export interface ModelStatus {
  model_id: string;
  status: ModelState;
  /** Load progress, 0..1. */
  progress: number;
  error?: string;
}

/** "restarting": it stopped on its own and starts again after a delay. */
export type ServerState = "starting" | "running" | "restarting" | "stopped";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isModelState(value: unknown): value is ModelState {
  return typeof value === "string" && (MODEL_STATES as readonly string[]).includes(value);
}

function clampProgress(value: unknown): number {
  if (typeof value !== "number" || Number.isNaN(value)) {
    return 0;
  }
  return Math.min(1, Math.max(0, value));
}

/** Checks a notification's params; undefined when they do not follow the contract. */
export function parseModelStatus(params: unknown): ModelStatus | undefined {
  if (!isRecord(params)) {
    return undefined;
  }
  const { model_id: modelId, status, progress, error } = params;
  if (typeof modelId !== "string" || modelId === "" || !isModelState(status)) {
    return undefined;
  }
  const parsed: ModelStatus = { model_id: modelId, status, progress: clampProgress(progress) };
  if (typeof error === "string" && error !== "") {
    parsed.error = error;
  }
  return parsed;
}

/** The latest known state of each model. */
export class ModelStatusTracker {
  private readonly models = new Map<string, ModelStatus>();
  private lastChanged: string | undefined;

  /** Applies one `ai-ide/modelStatus` notification; false when its params are invalid. */
  update(params: unknown): boolean {
    const parsed = parseModelStatus(params);
    if (parsed === undefined) {
      return false;
    }
    this.models.set(parsed.model_id, parsed);
    this.lastChanged = parsed.model_id;
    return true;
  }

  /** Applies an `ai-ide.showStatus` result (`{models: [{id, status, load_progress, error}]}`). */
  updateFromStatusResult(result: unknown): number {
    if (!isRecord(result) || !Array.isArray(result.models)) {
      return 0;
    }
    let applied = 0;
    for (const model of result.models as unknown[]) {
      if (!isRecord(model)) {
        continue;
      }
      const parsed = parseModelStatus({
        model_id: model.id,
        status: model.status,
        progress: model.load_progress ?? (model.status === "loaded" ? 1 : 0),
        error: model.error,
      });
      if (parsed !== undefined) {
        this.models.set(parsed.model_id, parsed);
        applied += 1;
      }
    }
    return applied;
  }

  get(modelId: string): ModelStatus | undefined {
    return this.models.get(modelId);
  }

  /** Every known model id, loaded ones first. */
  modelIds(): string[] {
    const rank = (id: string): number => (this.models.get(id)?.status === "loaded" ? 0 : 1);
    return [...this.models.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  }

  /**
   * The model the status bar shows: one that is loading or unloading (its
   * progress is news), else the preferred (configured) model when known,
   * else the one that changed last.
   */
  focus(preferred?: string): ModelStatus | undefined {
    for (const model of this.models.values()) {
      if (model.status === "loading" || model.status === "unloading") {
        return model;
      }
    }
    if (preferred !== undefined && this.models.has(preferred)) {
      return this.models.get(preferred);
    }
    return this.lastChanged === undefined ? undefined : this.models.get(this.lastChanged);
  }

  clear(): void {
    this.models.clear();
    this.lastChanged = undefined;
  }
}

export interface StatusView {
  /** Status bar text, with `$(icon)` codicons. */
  text: string;
  tooltip: string;
  severity: "normal" | "warning" | "error";
}

/** What the status bar says for the server's and the focused model's state. */
export function renderStatus(server: ServerState, model: ModelStatus | undefined): StatusView {
  if (server === "starting") {
    return { text: "$(sync~spin) AI IDE", tooltip: "ai-ide: starting the language server", severity: "normal" };
  }
  if (server === "restarting") {
    return {
      text: "$(sync~spin) AI IDE restarting",
      tooltip: "ai-ide: the language server stopped; it is being restarted",
      severity: "warning",
    };
  }
  if (server === "stopped") {
    return {
      text: "$(circle-slash) AI IDE",
      tooltip: "ai-ide: the language server is not running (see the AI IDE output)",
      severity: "warning",
    };
  }
  if (model === undefined) {
    return {
      text: "$(hubot) AI IDE",
      tooltip: "ai-ide: running; the model loads on the first completion",
      severity: "normal",
    };
  }
  const id = model.model_id;
  switch (model.status) {
    case "available":
      return { text: `$(circle-outline) ${id}`, tooltip: `${id}: not loaded (loads on the first completion)`, severity: "normal" };
    case "loading":
      return {
        text: `$(loading~spin) ${id} ${Math.round(model.progress * 100)}%`,
        tooltip: `${id}: loading (${Math.round(model.progress * 100)}%)`,
        severity: "normal",
      };
    case "loaded":
      return { text: `$(check) ${id}`, tooltip: `${id}: loaded`, severity: "normal" };
    case "unloading":
      return { text: `$(loading~spin) ${id}`, tooltip: `${id}: unloading`, severity: "normal" };
    case "error":
      return {
        text: `$(error) ${id}`,
        tooltip: `${id}: ${model.error ?? "failed"}`,
        severity: "error",
      };
  }
}
