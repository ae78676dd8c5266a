/**
 * The VS Code client of `ai-ide lsp`. It stays thin: inline completion
 * (ghost text), completion and code actions come from vscode-languageclient's
 * standard features; this file starts the server, passes settings, shows the
 * model state and maps palette commands to the server's commands.
 */

import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  RevealOutputChannelOn,
  State,
  TransportKind,
  type CloseHandlerResult,
  type ErrorHandler,
  type ErrorHandlerResult,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import { insertAtCursor } from "./inline";
import { MODEL_STATUS_NOTIFICATION } from "./modelStatus";
import { RestartPolicy, describeStop } from "./restartPolicy";
import { actionData, staleEditMessage } from "./staleEdit";
import {
  SERVER_COMMANDS,
  describeGenerate,
  describeLoad,
  generateArguments,
  modelArguments,
} from "./serverCommands";
import {
  documentSelector,
  needsRestart,
  readSettings,
  serverCommand,
  serverSettings,
  type Settings,
} from "./settings";
import { StatusBar } from "./status";

const SECTION = "aiIde";

/**
 * The language client, minus its own error popups: "couldn't create
 * connection", "Server initialization failed" and the like go to the output
 * channel only; the extension tells the user itself, once (see errorHandler).
 */
class AiIdeLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown): void {
    super.error(message, data, false);
  }
}

function currentSettings(): { settings: Settings; problems: string[] } {
  const configuration = vscode.workspace.getConfiguration(SECTION);
  return readSettings((key) => configuration.get(key));
}

class AiIdeExtension implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private settings: Settings;
  private readonly output = vscode.window.createOutputChannel("AI IDE", { log: true });
  private readonly trace = vscode.window.createOutputChannel("AI IDE Trace", { log: true });
  private readonly status: StatusBar;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly restarts = new RestartPolicy();
  /** A restart waiting for its backoff delay. */
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  /** Start/stop/restart run one at a time, in order. */
  private lifecycle: Promise<void> = Promise.resolve();
  private disposed = false;
  /** Ends the "restarting" notification. */
  private endRestartNotice: (() => void) | undefined;
  /** Clients whose stop the error handler has already told the user about. */
  private readonly reportedStops = new WeakSet<LanguageClient>();

  constructor() {
    const { settings, problems } = currentSettings();
    this.settings = settings;
    this.reportProblems(problems);
    this.status = new StatusBar(() => this.settings.model, "aiIde.showStatus");
  }

  register(context: vscode.ExtensionContext): void {
    const commands: [string, () => Promise<void>][] = [
      ["aiIde.loadModel", () => this.loadModel()],
      ["aiIde.unloadModel", () => this.unloadModel()],
      ["aiIde.generate", () => this.generate()],
      ["aiIde.showStatus", () => this.showStatus()],
      ["aiIde.showLog", () => this.showLog()],
      ["aiIde.restartServer", () => this.restartByHand()],
    ];
    for (const [id, run] of commands) {
      this.disposables.push(vscode.commands.registerCommand(id, run));
    }
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration(SECTION)) {
          void this.onSettingsChanged();
        }
      }),
    );
    context.subscriptions.push(this);
  }

  /** Runs `step` after every start/stop/restart queued before it. */
  private serialized(step: () => Promise<void>): Promise<void> {
    const next = this.lifecycle.then(step, step);
    this.lifecycle = next.catch(() => undefined);
    return next;
  }

  start(): Promise<void> {
    return this.serialized(() => this.doStart());
  }

  stop(): Promise<void> {
    this.cancelScheduledRestart();
    return this.serialized(() => this.doStop());
  }

  /** A fresh server process: the old client (running, crashed or failed) is disposed first. */
  restart(): Promise<void> {
    // The "restarting" notification, if any, stays until this restart is done.
    this.clearRestartTimer();
    this.output.info("Restarting the language server");
    return this.serialized(async () => {
      await this.doStop();
      if (!this.disposed) {
        await this.doStart();
      }
    });
  }

  /** "AI IDE: Restart Server": also forgets earlier crashes, so restarts are automatic again. */
  private restartByHand(): Promise<void> {
    this.restarts.reset();
    return this.restart().finally(() => {
      this.closeRestartNotice();
    });
  }

  private clearRestartTimer(): void {
    if (this.restartTimer !== undefined) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
  }

  private cancelScheduledRestart(): void {
    this.clearRestartTimer();
    this.closeRestartNotice();
  }

  /**
   * The client's error handler. The server stopping on its own (killed,
   * crashed, failed to start) is handled here rather than by the client's
   * built-in restart, which restarts at once and, after 5 crashes, never
   * again: a message, a restart after a growing delay, and a way back.
   */
  private errorHandler(client: () => LanguageClient | undefined): ErrorHandler {
    return {
      error: (_error, _message, count): ErrorHandlerResult => ({
        // Transport errors (a broken pipe): the close that follows decides.
        action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
        handled: true,
      }),
      closed: (): CloseHandlerResult => {
        if (this.disposed || this.client !== client()) {
          // Stopped on purpose (restart, settings change, window closing).
          return { action: CloseAction.DoNotRestart, handled: true };
        }
        const stopped = client();
        if (stopped === undefined || !this.reportedStops.has(stopped)) {
          // Once per client: a stop while starting may have been counted already.
          this.onServerStopped(stopped);
        }
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    };
  }

  private onServerStopped(client: LanguageClient | undefined): void {
    if (client !== undefined) {
      this.reportedStops.add(client);
    }
    const decision = this.restarts.onCrash(Date.now());
    const message = describeStop(decision);
    this.output.warn(message);
    this.cancelScheduledRestart();
    if (decision.restart) {
      this.status.setServerState("restarting");
      // A notification that lasts until the new server has started (or the
      // restart is called off), so no stale "restarting" message stays up.
      const notice = new Promise<void>((resolve) => {
        this.endRestartNotice = resolve;
      });
      void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: message }, () => notice);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        void this.restart().finally(() => {
          this.closeRestartNotice();
        });
      }, decision.delayMs);
      return;
    }
    this.status.setServerState("stopped");
    void vscode.window.showErrorMessage(message, "Restart", "Show Log").then((choice) => {
      if (choice === "Restart") {
        void this.restartByHand();
      } else if (choice === "Show Log") {
        this.output.show(true);
      }
    });
  }

  private closeRestartNotice(): void {
    const end = this.endRestartNotice;
    this.endRestartNotice = undefined;
    end?.();
  }

  private async doStart(): Promise<void> {
    const { command, args } = serverCommand(this.settings);
    const serverOptions: ServerOptions = {
      command,
      args,
      transport: TransportKind.stdio,
      options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: documentSelector(this.settings),
      initializationOptions: serverSettings(this.settings),
      // The server logs to stderr; the client copies it into this channel.
      outputChannel: this.output,
      traceOutputChannel: this.trace,
      errorHandler: this.errorHandler(() => client),
      // The client's own popups ("Server initialization failed", "crashed 5
      // times") would repeat what the error handler and start() tell the user.
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      // A server that dies during `initialize`: no popup of the raw error; the
      // close that follows is reported (and restarted) by the error handler.
      initializationFailedHandler: (error: unknown) => {
        this.output.warn(`Initialization failed: ${error instanceof Error ? error.message : String(error)}`);
        return false;
      },
      synchronize: { configurationSection: SECTION },
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) =>
          insertAtCursor(await next(document, position, context, token), () => new vscode.Range(position, position)),
        // VS Code applies a resolved action's edit without looking at the
        // version it names: check it here, as the client does for applyEdit.
        resolveCodeAction: async (item, token, next) => {
          const resolved = await next(item, token);
          if (resolved?.edit === undefined) {
            return resolved;
          }
          const data = actionData((resolved as { data?: unknown }).data);
          const document = vscode.workspace.textDocuments.find((open) => open.uri.toString() === data?.uri);
          const problem = staleEditMessage(resolved.title, data, document?.version);
          if (problem !== undefined) {
            resolved.edit = undefined;
            this.output.warn(problem);
            void vscode.window.showWarningMessage(problem);
          }
          return resolved;
        },
        workspace: {
          // Answer `workspace/configuration` for "aiIde" with the validated settings.
          configuration: async (params, token, next) => {
            const answers = await next(params, token);
            if (!Array.isArray(answers)) {
              return answers;
            }
            return params.items.map((item, index): unknown =>
              item.section === SECTION ? serverSettings(this.settings) : answers[index],
            );
          },
          // Push the validated settings rather than the raw section.
          didChangeConfiguration: async () => {
            await this.client?.sendNotification(DidChangeConfigurationNotification.type, {
              settings: { [SECTION]: serverSettings(this.settings) },
            });
          },
        },
      },
    };
    // The error handler (in clientOptions) refers to this client once it runs.
    const client = new AiIdeLanguageClient(SECTION, "AI IDE", serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((event) => {
      if (this.client !== client) {
        return; // an old client winding down
      }
      if (event.newState === State.Running) {
        this.status.setServerState("running");
      } else if (event.newState === State.Starting) {
        this.status.setServerState("starting");
      } else if (this.restartTimer === undefined) {
        this.status.setServerState("stopped");
      }
    });
    client.onNotification(MODEL_STATUS_NOTIFICATION, (params: unknown) => {
      this.status.onModelStatus(params);
    });
    this.status.setServerState("starting");
    this.output.info(`Starting: ${[command, ...args].join(" ")}`);
    try {
      await startedOrStopped(client);
    } catch (error) {
      if (this.reportedStops.has(client)) {
        // It stopped while starting: the error handler has already told the
        // user (and scheduled the next try, if there is one).
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      if (!/\b(ENOENT|EACCES)\b/.test(message)) {
        // It started and died before the client was up (killed, crashed:
        // a broken pipe): a stop like any other, so it is restarted after
        // the policy's delay, or given up on with its message, instead of
        // leaving the editor with no server and nothing to say so.
        this.output.warn(`The language server stopped while starting: ${message}`);
        this.onServerStopped(client);
        return;
      }
      this.status.setServerState("stopped");
      const choice = await vscode.window.showErrorMessage(
        `ai-ide: could not start the language server (${command}): ${message}`,
        "Open Settings",
        "Show Log",
      );
      if (choice === "Open Settings") {
        await vscode.commands.executeCommand("workbench.action.openSettings", "aiIde.server.command");
      } else if (choice === "Show Log") {
        this.output.show(true);
      }
    }
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      try {
        // Fails for a client that is not running (crashed, failed to start):
        // it is disposed all the same, and a new one can start.
        await client.dispose(2000);
      } catch (error) {
        this.output.debug(`Disposing the old client: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    this.status.setServerState("stopped");
  }

  private reportProblems(problems: string[]): void {
    if (problems.length > 0) {
      void vscode.window.showWarningMessage(
        `ai-ide: invalid settings (defaults used): ${problems.join("; ")}`,
      );
    }
  }

  private async onSettingsChanged(): Promise<void> {
    const before = this.settings;
    const { settings, problems } = currentSettings();
    this.settings = settings;
    this.reportProblems(problems);
    this.status.refresh();
    if (needsRestart(before, settings)) {
      const choice = await vscode.window.showInformationMessage(
        "ai-ide: the server command or languages changed. Restart the language server?",
        "Restart",
      );
      if (choice === "Restart") {
        await this.restart();
      }
    }
  }

  /** Runs a server command; errors are shown and give undefined. */
  private async execute(command: string, args: unknown[]): Promise<unknown> {
    const client = this.client;
    if (client?.isRunning() !== true) {
      void vscode.window.showWarningMessage("ai-ide: the language server is not running");
      return undefined;
    }
    try {
      return await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      void vscode.window.showErrorMessage(`ai-ide: ${command} failed: ${message}`);
      return undefined;
    }
  }

  private async askModel(verb: string, suggestion: string | undefined): Promise<string | undefined> {
    const known = this.status.models.modelIds();
    return vscode.window.showInputBox({
      title: `AI IDE: ${verb} Model`,
      prompt: `Model id to ${verb.toLowerCase()}; empty: the configured model${known.length > 0 ? ` (known: ${known.join(", ")})` : ""}`,
      value: suggestion ?? "",
    });
  }

  private async loadModel(): Promise<void> {
    const id = await this.askModel("Load", this.settings.model);
    if (id === undefined) {
      return;
    }
    const result = await this.execute(SERVER_COMMANDS.loadModel, modelArguments(id));
    if (result !== undefined) {
      void vscode.window.showInformationMessage(describeLoad(result));
    }
  }

  private async unloadModel(): Promise<void> {
    const loaded = this.status.models.modelIds().find((id) => this.status.models.get(id)?.status === "loaded");
    const id = await this.askModel("Unload", loaded ?? this.settings.model);
    if (id === undefined) {
      return;
    }
    // The server reports the freed memory itself (window/showMessage).
    await this.execute(SERVER_COMMANDS.unloadModel, modelArguments(id));
  }

  private async generate(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const client = this.client;
    if (editor === undefined || client === undefined) {
      void vscode.window.showWarningMessage("ai-ide: open a file to generate code into");
      return;
    }
    const prompt = await vscode.window.showInputBox({
      title: "AI IDE: Generate Code",
      prompt: "What to generate at the cursor; empty: follow the comment above the cursor",
    });
    if (prompt === undefined) {
      return;
    }
    const args = generateArguments(
      client.code2ProtocolConverter.asUri(editor.document.uri),
      client.code2ProtocolConverter.asPosition(editor.selection.active),
      prompt,
    );
    // The server inserts the code itself (workspace/applyEdit) before it answers.
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: "ai-ide: generating…" },
      () => this.execute(SERVER_COMMANDS.generate, args),
    );
    const problem = result === undefined ? undefined : describeGenerate(result);
    if (problem !== undefined) {
      void vscode.window.showWarningMessage(problem);
    }
  }

  private showLog(): Promise<void> {
    this.output.show(true);
    return Promise.resolve();
  }

  private async showStatus(): Promise<void> {
    // The server also answers with window/showMessage; the result feeds the status bar.
    const result = await this.execute(SERVER_COMMANDS.showStatus, []);
    if (result !== undefined) {
      this.status.onStatusResult(result);
    }
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
    for (const disposable of this.disposables) {
      disposable.dispose();
    }
    this.status.dispose();
    this.output.dispose();
    this.trace.dispose();
  }
}

/**
 * Starts `client`; settles once it runs, fails, or stops. A server killed
 * before it answered `initialize` leaves `client.start()` pending forever,
 * which would hold up every later restart.
 */
async function startedOrStopped(client: LanguageClient): Promise<void> {
  let subscription: { dispose(): void } | undefined;
  const stopped = new Promise<void>((resolve) => {
    subscription = client.onDidChangeState((event) => {
      if (event.newState === State.Stopped) {
        resolve();
      }
    });
  });
  try {
    await Promise.race([client.start(), stopped]);
  } finally {
    subscription?.dispose();
  }
}

let extension: AiIdeExtension | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  extension = new AiIdeExtension();
  extension.register(context);
  await extension.start();
}

export async function deactivate(): Promise<void> {
  await extension?.stop();
  extension = undefined;
}
