import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  SERVER_COMMANDS,
  describeGenerate,
  describeLoad,
  generateArguments,
  modelArguments,
} from "../src/serverCommands";

describe("server command arguments", () => {
  it("uses the contract's command ids", () => {
    assert.deepEqual(Object.values(SERVER_COMMANDS), [
      "ai-ide.loadModel",
      "ai-ide.unloadModel",
      "ai-ide.generate",
      "ai-ide.showStatus",
    ]);
  });

  it("passes a model id, or nothing for the configured model", () => {
    assert.deepEqual(modelArguments("gemma3-270m"), ["gemma3-270m"]);
    assert.deepEqual(modelArguments("  "), []);
    assert.deepEqual(modelArguments(undefined), []);
  });

  it("builds generate's argument with or without a prompt", () => {
    const position = { line: 3, character: 4 };
    assert.deepEqual(generateArguments("file:///a.py", position, " sort the list "), [
      { uri: "file:///a.py", position, prompt: "sort the list" },
    ]);
    assert.deepEqual(generateArguments("file:///a.py", position, ""), [{ uri: "file:///a.py", position }]);
    assert.deepEqual(generateArguments("file:///a.py", position, undefined), [{ uri: "file:///a.py", position }]);
  });
});

describe("result messages", () => {
  it("describes a load", () => {
    assert.equal(describeLoad({ model_id: "m", status: "loaded" }), "ai-ide: m is loaded");
    assert.equal(describeLoad(null), "ai-ide: load requested");
  });

  it("says nothing when generated code was applied", () => {
    assert.equal(describeGenerate({ applied: true, text: "x = 1" }), undefined);
    assert.match(describeGenerate({ applied: false, text: "x = 1" }) ?? "", /could not be applied/);
    assert.match(describeGenerate({ applied: false, text: "" }) ?? "", /nothing was generated/);
    assert.match(describeGenerate(undefined) ?? "", /no generation result/);
  });
});
