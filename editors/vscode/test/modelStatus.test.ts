import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ModelStatusTracker, parseModelStatus, renderStatus } from "../src/modelStatus";

describe("parseModelStatus", () => {
  it("accepts the contract's params", () => {
    assert.deepEqual(parseModelStatus({ model_id: "m", status: "loading", progress: 0.5 }), {
      model_id: "m",
      status: "loading",
      progress: 0.5,
    });
    assert.deepEqual(parseModelStatus({ model_id: "m", status: "error", progress: 0, error: "file missing" }), {
      model_id: "m",
      status: "error",
      progress: 0,
      error: "file missing",
    });
  });

  it("clamps progress and defaults a missing one to 0", () => {
    assert.equal(parseModelStatus({ model_id: "m", status: "loading", progress: 1.7 })?.progress, 1);
    assert.equal(parseModelStatus({ model_id: "m", status: "loading", progress: -1 })?.progress, 0);
    assert.equal(parseModelStatus({ model_id: "m", status: "loading" })?.progress, 0);
  });

  it("rejects params outside the contract", () => {
    for (const params of [null, [], "loaded", { status: "loaded" }, { model_id: "", status: "loaded" }, { model_id: "m", status: "ready" }]) {
      assert.equal(parseModelStatus(params), undefined, JSON.stringify(params));
    }
  });
});

describe("ModelStatusTracker", () => {
  it("focuses a loading model, then the preferred one, then the last changed", () => {
    const tracker = new ModelStatusTracker();
    assert.equal(tracker.focus(), undefined);
    assert.equal(tracker.update({ model_id: "a", status: "loaded", progress: 1 }), true);
    assert.equal(tracker.update({ model_id: "b", status: "available", progress: 0 }), true);
    assert.equal(tracker.focus()?.model_id, "b");
    assert.equal(tracker.focus("a")?.model_id, "a");
    tracker.update({ model_id: "c", status: "loading", progress: 0.25 });
    assert.equal(tracker.focus("a")?.model_id, "c");
    tracker.update({ model_id: "c", status: "loaded", progress: 1 });
    assert.equal(tracker.focus("a")?.model_id, "a");
    assert.equal(tracker.focus("unknown")?.model_id, "c");
  });

  it("ignores invalid notifications", () => {
    const tracker = new ModelStatusTracker();
    assert.equal(tracker.update({ model_id: "a", status: "bogus" }), false);
    assert.deepEqual(tracker.modelIds(), []);
  });

  it("reads the showStatus result, loaded models first", () => {
    const tracker = new ModelStatusTracker();
    const applied = tracker.updateFromStatusResult({
      models: [
        { id: "z", name: "Z", status: "available", memory_usage_mb: 0, load_progress: 0, error: null },
        { id: "y", name: "Y", status: "loaded", memory_usage_mb: 250, load_progress: 1, error: null },
        { id: "x", name: "X", status: "error", error: "corrupt file" },
        "not a model",
      ],
      uptime_seconds: 12,
    });
    assert.equal(applied, 3);
    assert.deepEqual(tracker.modelIds(), ["y", "x", "z"]);
    assert.equal(tracker.get("x")?.error, "corrupt file");
    assert.equal(tracker.updateFromStatusResult({}), 0);
  });
});

describe("renderStatus", () => {
  it("shows the server state before any model", () => {
    assert.match(renderStatus("starting", undefined).text, /sync~spin/);
    assert.equal(renderStatus("stopped", undefined).severity, "warning");
    assert.match(renderStatus("restarting", undefined).text, /restarting/);
    assert.match(renderStatus("running", undefined).tooltip, /loads on the first completion/);
  });

  it("shows load progress in percent", () => {
    const view = renderStatus("running", { model_id: "gemma3-270m", status: "loading", progress: 0.426 });
    assert.equal(view.text, "$(loading~spin) gemma3-270m 43%");
  });

  it("shows each state", () => {
    assert.equal(renderStatus("running", { model_id: "m", status: "loaded", progress: 1 }).text, "$(check) m");
    assert.match(renderStatus("running", { model_id: "m", status: "available", progress: 0 }).tooltip, /not loaded/);
    assert.match(renderStatus("running", { model_id: "m", status: "unloading", progress: 0 }).tooltip, /unloading/);
    const error = renderStatus("running", { model_id: "m", status: "error", progress: 0, error: "no such file" });
    assert.equal(error.severity, "error");
    assert.equal(error.tooltip, "m: no such file");
  });

  it("prefers the server state over a stale model state", () => {
    assert.match(renderStatus("stopped", { model_id: "m", status: "loaded", progress: 1 }).text, /circle-slash/);
  });
});
