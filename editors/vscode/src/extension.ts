/**
 * The VS Code client of `ai-ide lsp`. It stays thin: inline completion
 * (ghost text), completion and code actions come from vscode-languageclient's
 * standard features; this file starts the server, passes settings, shows the
 * model state and maps palette commands to the server's commands.
 */

import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  State,
  TransportKind,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import { MODEL_STATUS_NOTIFICATION } from "./modelStatus";
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
      ["aiIde.restartServer", () => this.restart()],
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

  async start(): Promise<void> {
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
      synchronize: { configurationSection: SECTION },
      middleware: {
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
    const client = new LanguageClient(SECTION, "AI IDE", serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((event) => {
      this.status.setServerState(
        event.newState === State.Running ? "running" : event.newState === State.Starting ? "starting" : "stopped",
      );
    });
    client.onNotification(MODEL_STATUS_NOTIFICATION, (params: unknown) => {
      this.status.onModelStatus(params);
    });
    this.status.setServerState("starting");
    this.output.info(`Starting: ${[command, ...args].join(" ")}`);
    try {
      await client.start();
    } catch (error) {
      this.status.setServerState("stopped");
      const message = error instanceof Error ? error.message : String(error);
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

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      await client.dispose();
    }
    this.status.setServerState("stopped");
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
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
    void this.stop();
    for (const disposable of this.disposables) {
      disposable.dispose();
    }
    this.status.dispose();
    this.output.dispose();
    this.trace.dispose();
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
