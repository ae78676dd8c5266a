// The manifest (package.json) and the code agree: commands, settings, defaults.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DEFAULTS, DEFAULT_LANGUAGES } from "../src/settings";

interface Manifest {
  main: string;
  engines: { vscode: string };
  activationEvents: string[];
  contributes: {
    commands: { command: string; title: string }[];
    configuration: { properties: Record<string, { default?: unknown }> };
  };
  devDependencies: Record<string, string>;
}

const root = join(__dirname, "..", "..");
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Manifest;
const extensionSource = readFileSync(join(root, "src", "extension.ts"), "utf8");

describe("package.json", () => {
  it("activates on every default language", () => {
    const expected = Object.keys(DEFAULT_LANGUAGES).map((language) => `onLanguage:${language}`);
    assert.deepEqual([...manifest.activationEvents].sort(), expected.sort());
  });

  it("contributes exactly the commands the extension registers", () => {
    const registered = [...extensionSource.matchAll(/\["(aiIde\.[A-Za-z]+)",/g)].map((match) => match[1]);
    const contributed = manifest.contributes.commands.map((command) => command.command);
    assert.deepEqual([...contributed].sort(), [...registered].sort());
  });

  it("declares defaults equal to the code's", () => {
    const properties = manifest.contributes.configuration.properties;
    assert.deepEqual(properties["aiIde.server.command"]?.default, DEFAULTS.command);
    assert.equal(properties["aiIde.model"]?.default, null);
    assert.equal(properties["aiIde.maxTokens"]?.default, DEFAULTS.maxTokens);
    assert.deepEqual(properties["aiIde.languages"]?.default, DEFAULT_LANGUAGES);
    assert.equal(properties["aiIde.sidecar.enabled"]?.default, DEFAULTS.sidecar.enabled);
    assert.equal(properties["aiIde.sidecar.port"]?.default, DEFAULTS.sidecar.port);
  });

  it("targets the VS Code version its @types/vscode describes", () => {
    // vsce refuses @types/vscode newer than engines.vscode.
    assert.equal(manifest.engines.vscode, `^${manifest.devDependencies["@types/vscode"] ?? ""}`);
  });

  it("runs the bundled entry point", () => {
    assert.equal(manifest.main, "./dist/extension.js");
  });
});
