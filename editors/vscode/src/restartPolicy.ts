/**
 * When to restart a language server that stopped on its own: after a growing
 * delay, and not at all once it has stopped too often in a short time (then
 * the user restarts it by hand, which starts the count afresh).
 *
 * Pure logic (no `vscode` import), so it is unit tested under plain Node.
 */

export interface RestartDecision {
  /** Whether to start the server again. */
  restart: boolean;
  /** How long to wait first (0 when not restarting). */
  delayMs: number;
  /** Stops counted in the window, this one included. */
  crashes: number;
}

export interface RestartPolicyOptions {
  /** Most stops within `windowMs` that are still followed by a restart. */
  maxCrashes: number;
  windowMs: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RESTART_POLICY: Readonly<RestartPolicyOptions> = Object.freeze({
  maxCrashes: 5,
  windowMs: 3 * 60_000,
  firstDelayMs: 1_000,
  maxDelayMs: 16_000,
});

export class RestartPolicy {
  private crashes: number[] = [];

  constructor(private readonly options: RestartPolicyOptions = DEFAULT_RESTART_POLICY) {}

  /** Records a stop at `now` (ms) and says what to do about it. */
  onCrash(now: number): RestartDecision {
    this.crashes = this.crashes.filter((at) => now - at < this.options.windowMs);
    this.crashes.push(now);
    const crashes = this.crashes.length;
    if (crashes > this.options.maxCrashes) {
      return { restart: false, delayMs: 0, crashes };
    }
    // 1 s, 2 s, 4 s, ...: a server that dies at start does not spin the CPU.
    const delayMs = Math.min(this.options.maxDelayMs, this.options.firstDelayMs * 2 ** (crashes - 1));
    return { restart: true, delayMs, crashes };
  }

  /** Forgets past stops (the user restarted the server by hand). */
  reset(): void {
    this.crashes = [];
  }
}

/** The message shown when the server stopped, for an exit code and signal when known. */
export function describeStop(decision: RestartDecision): string {
  if (decision.restart) {
    const seconds = Math.round(decision.delayMs / 1000);
    return `ai-ide: the language server stopped; restarting it in ${seconds} s`;
  }
  return `ai-ide: the language server stopped ${decision.crashes} times in a few minutes, so it is not restarted; see the AI IDE output, then run "AI IDE: Restart Server"`;
}
