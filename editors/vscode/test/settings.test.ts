import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULTS,
  DEFAULT_LANGUAGES,
  documentSelector,
  needsRestart,
  readSettings,
  serverCommand,
  serverSettings,
  type Settings,
} from "../src/settings";

function read(values: Record<string, unknown>): ReturnType<typeof readSettings> {
  return readSettings((key) => values[key]);
}

function withSettings(overrides: Partial<Settings>): Settings {
  return { ...read({}).settings, ...overrides };
}

describe("readSettings", () => {
  it("gives the defaults when nothing is set", () => {
    const { settings, problems } = read({});
    assert.deepEqual(problems, []);
    assert.deepEqual(settings.command, ["ai-ide", "lsp"]);
    assert.equal(settings.model, undefined);
    assert.equal(settings.maxTokens, 64);
    assert.deepEqual(settings.languages, DEFAULT_LANGUAGES);
    assert.deepEqual(settings.sidecar, { enabled: true, port: 8765 });
  });

  it("reads valid values", () => {
    const { settings, problems } = read({
      "server.command": ["/opt/venv/bin/ai-ide", "lsp", "--config", "/etc/ai-ide.toml"],
      model: " qwen2.5-coder-1.5b ",
      maxTokens: 128,
      languages: { python: false, lua: true },
      "sidecar.enabled": false,
      "sidecar.port": 9000,
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(settings.command, ["/opt/venv/bin/ai-ide", "lsp", "--config", "/etc/ai-ide.toml"]);
    assert.equal(settings.model, "qwen2.5-coder-1.5b");
    assert.equal(settings.maxTokens, 128);
    assert.equal(settings.languages.python, false);
    assert.equal(settings.languages.lua, true);
    assert.equal(settings.languages.rust, true, "languages merge over the defaults");
    assert.deepEqual(settings.sidecar, { enabled: false, port: 9000 });
  });

  it("splits a command given as one string", () => {
    assert.deepEqual(read({ "server.command": "  python -m lsp_server.cli lsp " }).settings.command, [
      "python",
      "-m",
      "lsp_server.cli",
      "lsp",
    ]);
  });

  it("treats an empty model as the server's default", () => {
    assert.equal(read({ model: "   " }).settings.model, undefined);
    assert.equal(read({ model: null }).settings.model, undefined);
  });

  it("replaces invalid values by defaults and says which", () => {
    const { settings, problems } = read({
      "server.command": [],
      model: 42,
      maxTokens: 0,
      languages: { python: "yes", go: false },
      "sidecar.enabled": "no",
      "sidecar.port": 70000,
    });
    assert.deepEqual(settings.command, DEFAULTS.command);
    assert.equal(settings.model, undefined);
    assert.equal(settings.maxTokens, DEFAULTS.maxTokens);
    assert.equal(settings.languages.python, true);
    assert.equal(settings.languages.go, false, "valid entries are kept");
    assert.deepEqual(settings.sidecar, DEFAULTS.sidecar);
    assert.equal(problems.length, 6);
    for (const key of ["server.command", "model", "maxTokens", "languages.python", "sidecar.enabled", "sidecar.port"]) {
      assert.ok(problems.some((line) => line.includes(`aiIde.${key}`)), `a problem names aiIde.${key}`);
    }
  });

  it("rejects fractional and oversized token limits", () => {
    assert.equal(read({ maxTokens: 12.5 }).settings.maxTokens, 64);
    assert.equal(read({ maxTokens: 1025 }).settings.maxTokens, 64);
    assert.equal(read({ maxTokens: 1024 }).settings.maxTokens, 1024);
  });
});

describe("serverCommand", () => {
  it("starts `ai-ide lsp` with the sidecar port", () => {
    assert.deepEqual(serverCommand(withSettings({})), {
      command: "ai-ide",
      args: ["lsp", "--http-port", "8765"],
    });
  });

  it("turns the sidecar off with --no-http", () => {
    assert.deepEqual(serverCommand(withSettings({ sidecar: { enabled: false, port: 8765 } })), {
      command: "ai-ide",
      args: ["lsp", "--no-http"],
    });
  });

  it("keeps a sidecar flag already in the command", () => {
    for (const flag of [["--no-http"], ["--http-port", "1234"], ["--http-port=1234"]]) {
      const settings = withSettings({ command: ["ai-ide", "lsp", ...flag] });
      assert.deepEqual(serverCommand(settings).args, ["lsp", ...flag]);
    }
  });

  it("does not modify the settings it is given", () => {
    const settings = withSettings({});
    serverCommand(settings);
    assert.deepEqual(settings.command, ["ai-ide", "lsp"]);
  });
});

describe("serverSettings", () => {
  it("is the object of the server's `aiIde` section", () => {
    const settings = withSettings({ model: "gemma3-270m", maxTokens: 32, languages: { python: false } });
    assert.deepEqual(serverSettings(settings), {
      model: "gemma3-270m",
      maxTokens: 32,
      languages: { python: false },
      sidecar: { enabled: true, port: 8765 },
    });
  });

  it("omits the model when none is configured", () => {
    assert.equal("model" in serverSettings(withSettings({})), false);
  });

  it("survives a JSON round trip (it crosses JSON-RPC)", () => {
    const value = serverSettings(withSettings({ model: "m" }));
    assert.deepEqual(JSON.parse(JSON.stringify(value)), value);
  });
});

describe("documentSelector", () => {
  it("covers files and untitled buffers of every listed language", () => {
    const selector = documentSelector(withSettings({ languages: { python: true, go: false } }));
    assert.deepEqual(selector, [
      { scheme: "file", language: "go" },
      { scheme: "untitled", language: "go" },
      { scheme: "file", language: "python" },
      { scheme: "untitled", language: "python" },
    ]);
  });
});

describe("needsRestart", () => {
  const base = withSettings({});
  it("is false for settings the server reads again", () => {
    assert.equal(needsRestart(base, { ...base, model: "other", maxTokens: 8 }), false);
    assert.equal(needsRestart(base, { ...base, languages: { ...base.languages, python: false } }), false);
  });
  it("is true when the command line or the document set changes", () => {
    assert.equal(needsRestart(base, { ...base, command: ["other", "lsp"] }), true);
    assert.equal(needsRestart(base, { ...base, sidecar: { enabled: true, port: 1 } }), true);
    assert.equal(needsRestart(base, { ...base, languages: { ...base.languages, lua: true } }), true);
  });
});
