/** The status bar item: server state, the focused model's state and its load progress. */

import * as vscode from "vscode";
import { ModelStatusTracker, renderStatus, type ServerState } from "./modelStatus";

export class StatusBar implements vscode.Disposable {
  readonly models = new ModelStatusTracker();
  private readonly item: vscode.StatusBarItem;
  private server: ServerState = "starting";

  /** @param preferredModel the configured model id, shown when nothing is loading. */
  constructor(
    private readonly preferredModel: () => string | undefined,
    command: string,
  ) {
    this.item = vscode.window.createStatusBarItem("aiIde.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "AI IDE";
    this.item.command = command;
    this.refresh();
    this.item.show();
  }

  setServerState(state: ServerState): void {
    this.server = state;
    if (state !== "running") {
      // A new server process knows nothing of the old one's models.
      this.models.clear();
    }
    this.refresh();
  }

  /** Handles an `ai-ide/modelStatus` notification. */
  onModelStatus(params: unknown): void {
    if (this.models.update(params)) {
      this.refresh();
    }
  }

  /** Handles an `ai-ide.showStatus` result. */
  onStatusResult(result: unknown): void {
    if (this.models.updateFromStatusResult(result) > 0) {
      this.refresh();
    }
  }

  refresh(): void {
    const view = renderStatus(this.server, this.models.focus(this.preferredModel()));
    this.item.text = view.text;
    this.item.tooltip = `${view.tooltip}\nClick for the model status.`;
    this.item.backgroundColor =
      view.severity === "error"
        ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : view.severity === "warning"
          ? new vscode.ThemeColor("statusBarItem.warningBackground")
          : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
