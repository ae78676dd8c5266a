// Drives a real VS Code (code-server in Chromium) through the extension as a
// person uses it. Started by tests/e2e/vscode/test_vscode.py, which installs
// the built .vsix, starts code-server and the language server's tiny models,
// and checks what this script records (JSON) and the files it saved.
//
//   node e2e/drive.mjs CONFIG.json
//
// CONFIG: { url, folder, configPath, screenshots, out, model }. Every wait
// polls with a generous bound: the machine may be slow and busy.
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = { steps: [], notifications: [], status: {} };
mkdirSync(config.screenshots, { recursive: true });

const STATUS = "#ai-ide\\.ai-ide\\.aiIde\\.status";
const MINUTE = 60_000;

function step(name) {
  results.steps.push(name);
  console.log(`[drive] ${name}`);
}

async function waitFor(what, condition, timeoutMs = 2 * MINUTE) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await condition();
      if (last) {
        return last;
      }
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out waiting for ${what} (last: ${String(last)})`);
}

/** The language server processes (by their --config path), from /proc. */
function serverPids() {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (cmdline.includes("lsp") && cmdline.includes(config.configPath) && state !== "Z") {
        pids.push(Number(entry));
      }
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
let shot = 0;

async function screenshot(name) {
  shot += 1;
  const file = join(config.screenshots, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

async function statusText() {
  return (await page.locator(STATUS).getAttribute("aria-label", { timeout: 5000 })) ?? "";
}

async function notificationTexts() {
  const texts = await page
    .locator(".notifications-toasts .notification-list-item-message")
    .allTextContents();
  for (const text of texts) {
    if (!results.notifications.includes(text)) {
      results.notifications.push(text);
    }
  }
  return texts;
}

async function dismissNotifications() {
  await page.keyboard.press("Escape");
  const clear = page.locator(".notifications-toasts .codicon-notifications-clear");
  for (const button of await clear.all()) {
    await button.click({ timeout: 2000 }).catch(() => undefined);
  }
}

async function waitForNotification(what, pattern, timeoutMs = 2 * MINUTE) {
  return waitFor(
    what,
    async () => (await notificationTexts()).find((text) => pattern.test(text)),
    timeoutMs,
  );
}

async function modelLoaded() {
  const text = await statusText();
  return text.startsWith("check") && text.includes(config.model) ? text : undefined;
}

/** Runs `action` again (after Escape) when it fails: a toast or a late widget may take the focus. */
async function retry(what, action, attempts = 3) {
  let last;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    try {
      return await action();
    } catch (error) {
      last = error;
      console.log(`[drive] ${what}: attempt ${attempt} failed: ${String(error).split("\n")[0]}`);
      await page.keyboard.press("Escape");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  throw last;
}

async function quickInput(keys, text) {
  await page.keyboard.press(keys);
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: 20_000 });
  await input.fill(text);
}

async function command(title) {
  await retry(`command ${title}`, async () => {
    await quickInput("Control+Shift+P", `>${title}`);
    const row = page.locator(".quick-input-list .monaco-list-row.focused", { hasText: title });
    await row.waitFor({ state: "visible", timeout: 20_000 });
    await page.keyboard.press("Enter");
    await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 20_000 });
  });
}

async function openFile(name) {
  await retry(`open ${name}`, async () => {
    await quickInput("Control+P", name);
    const row = page.locator(".quick-input-list .monaco-list-row.focused", { hasText: name });
    await row.waitFor({ state: "visible", timeout: 20_000 });
    await page.keyboard.press("Enter");
    await page.locator(".tab.active", { hasText: name }).waitFor({ timeout: 20_000 });
    await page.locator(".monaco-editor.focused").waitFor({ timeout: 20_000 });
  });
}

async function goTo(line, column) {
  await retry(`go to ${line}:${column}`, async () => {
    await quickInput("Control+G", `:${line}:${column}`);
    await page.keyboard.press("Enter");
    await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 20_000 });
    await page.locator(".monaco-editor.focused").waitFor({ timeout: 20_000 });
  });
}

async function ghostText() {
  const parts = await page
    .locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text")
    .allTextContents();
  const text = parts.join("");
  return text.trim() === "" ? undefined : text;
}

function fileText(name) {
  return readFileSync(join(config.folder, name), "utf8");
}

async function save(name, before) {
  await page.keyboard.press("Control+S");
  return waitFor(`${name} to be saved`, () => {
    const text = fileText(name);
    return text !== before ? text : undefined;
  });
}

/** Selects `length` characters from (line, column) and opens the refactor menu. */
async function refactorMenu(line, column, length) {
  const item = page.locator(".action-widget .monaco-list-row", { hasText: "Extract variable" }).first();
  // VS Code's manual trigger can race its own lightbulb request for the same
  // selection and report "No refactorings available" although the server
  // answered with actions (seen once in CI: both requests in the server log
  // listed Extract variable). A person selects and presses the keys again;
  // so does this.
  for (let attempt = 1; ; attempt += 1) {
    await goTo(line, column);
    for (let i = 0; i < length; i += 1) {
      await page.keyboard.press("Shift+ArrowRight");
    }
    await page.keyboard.press("Control+Shift+R");
    try {
      await item.waitFor({ state: "visible", timeout: attempt < 4 ? 30_000 : 2 * MINUTE });
      return;
    } catch (error) {
      if (attempt >= 4) {
        throw error;
      }
      await page.keyboard.press("Escape");
    }
  }
}

/** Picks `title` in the open refactor menu with the keyboard, as a person would. */
async function chooseAction(title) {
  for (let moves = 0; moves < 10; moves += 1) {
    const focused = page.locator(".action-widget .monaco-list-row.focused");
    if ((await focused.textContent({ timeout: 5000 }))?.includes(title)) {
      await page.keyboard.press("Enter");
      return;
    }
    await page.keyboard.press("ArrowDown");
  }
  throw new Error(`${title} is not in the refactor menu`);
}

async function run() {
  await page.goto(`${config.url}/?folder=${encodeURIComponent(config.folder)}`);
  await page.locator(".monaco-workbench").waitFor({ timeout: 3 * MINUTE });
  step("workbench");

  // 1. The extension starts the server (with --stdio) and the model loads.
  await openFile("shapes.py");
  results.status.loaded = await waitFor("the status bar to show the loaded model", modelLoaded, 4 * MINUTE);
  results.firstServer = serverPids();
  await screenshot("model-loaded");
  step("model loaded");

  // 2. Ghost text after a function header, accepted with Tab.
  await page.keyboard.press("Control+End");
  await page.keyboard.type("def square(x", { delay: 60 });
  results.ghost = await waitFor("ghost text", ghostText, 2 * MINUTE);
  await screenshot("ghost-text");
  await page.keyboard.press("Tab");
  // Accepted: the file, once saved, has the header followed by the suggestion.
  const accepted = `def square(x${results.ghost.replaceAll("\u00a0", " ").split("\n")[0].slice(0, 6)}`;
  results.shapesAfter = await waitFor("Tab to insert the suggestion", async () => {
    await page.keyboard.press("Control+S");
    await new Promise((resolve) => setTimeout(resolve, 500));
    const text = fileText("shapes.py");
    return text.includes(accepted) ? text : undefined;
  });
  await screenshot("accepted");
  step("ghost text accepted");

  // 3. Extract variable from the refactor menu.
  await openFile("pricing.py");
  const pricingBefore = fileText("pricing.py");
  const line = pricingBefore.split("\n")[1];
  await refactorMenu(2, line.indexOf("price") + 1, "price * quantity".length);
  await screenshot("refactor-menu");
  await chooseAction("Extract variable");
  results.pricingAfter = await save("pricing.py", pricingBefore);
  await screenshot("extracted");
  step("extract variable");

  // 4. An edit computed for an older version is refused. The server is
  //    paused while the action is chosen and the user types, so the edit it
  //    then computes names a version the editor has left behind.
  const refusedBefore = fileText("pricing.py");
  const refusedLines = refusedBefore.split("\n");
  const row = refusedLines.findIndex((text) => text.includes("price * quantity"));
  await refactorMenu(
    row + 1,
    refusedLines[row].indexOf("price * quantity") + 1,
    "price * quantity".length,
  );
  const paused = serverPids();
  for (const pid of paused) {
    process.kill(pid, "SIGSTOP");
  }
  try {
    await chooseAction("Extract variable");
    await page.keyboard.press("Control+End");
    await page.keyboard.type("# typed while the model ran\n");
  } finally {
    for (const pid of paused) {
      process.kill(pid, "SIGCONT");
    }
  }
  results.refusal = await waitForNotification(
    "the refusal message",
    /Extract variable (not applied|: the document changed)/,
  );
  await screenshot("stale-edit-refused");
  results.pricingRefused = await save("pricing.py", refusedBefore);
  await dismissNotifications();
  step("stale edit refused");

  // 5. Kill the server: a message, a restart, the model back, ghost text again.
  const [victim] = serverPids();
  process.kill(victim, "SIGTERM");
  results.restartMessage = await waitForNotification("the restart message", /restarting it in/);
  results.status.restarting = await waitFor("the restarting status", async () => {
    const text = await statusText();
    return /restarting|sync~spin|loading/.test(text) ? text : undefined;
  });
  await screenshot("restarting");
  results.status.reloaded = await waitFor("the model after the restart", modelLoaded, 4 * MINUTE);
  results.secondServer = serverPids();
  await dismissNotifications();
  await openFile("shapes.py");
  await page.keyboard.press("Control+End");
  await page.keyboard.press("Enter");
  await page.keyboard.type("def cube(y", { delay: 60 });
  results.ghostAfterRestart = await waitFor("ghost text after the restart", ghostText, 2 * MINUTE);
  await screenshot("restarted");
  step("restarted after kill");

  // 6. A crash loop: killed each time it comes back, until the extension
  //    stops restarting it; then "AI IDE: Restart Server" brings it back.
  let killed = 0;
  const seen = new Set(serverPids());
  const deadline = Date.now() + 4 * MINUTE;
  while (Date.now() < deadline) {
    const texts = await notificationTexts();
    if (texts.some((text) => /not restarted/.test(text))) {
      break;
    }
    for (const pid of serverPids()) {
      if (!seen.has(pid) || killed === 0) {
        seen.add(pid);
        process.kill(pid, "SIGKILL");
        killed += 1;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  results.crashLoop = { killed };
  results.gaveUp = await waitForNotification("the message that it gave up", /not restarted/);
  await screenshot("crash-loop");
  await dismissNotifications();
  await command("AI IDE: Restart Server");
  results.status.afterManualRestart = await waitFor(
    "the model after Restart Server",
    modelLoaded,
    4 * MINUTE,
  );
  results.thirdServer = serverPids();
  await screenshot("manual-restart");
  step("restart server after a crash loop");
}

let failure;
try {
  await run();
} catch (error) {
  failure = error instanceof Error ? `${error.message}\n${error.stack}` : String(error);
  results.error = failure;
  await notificationTexts().catch(() => undefined);
  results.lastStatus = await statusText().catch(() => "?");
  await screenshot("failure").catch(() => undefined);
} finally {
  writeFileSync(config.out, JSON.stringify(results, null, 2));
  await browser.close();
}
process.exit(failure === undefined ? 0 : 1);
