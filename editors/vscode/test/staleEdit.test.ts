import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { actionData, staleEditMessage } from "../src/staleEdit";

describe("staleEditMessage", () => {
  const data = actionData({ uri: "file:///a.py", version: 4, operation: "extract_variable" });

  it("lets an edit for the current version through", () => {
    assert.deepEqual(data, { uri: "file:///a.py", version: 4 });
    assert.equal(staleEditMessage("Extract variable", data, 4), undefined);
  });

  it("refuses an edit for another version, or a closed document", () => {
    assert.match(staleEditMessage("Extract variable", data, 5) ?? "", /Extract variable not applied: the file changed/);
    assert.notEqual(staleEditMessage("Extract variable", data, undefined), undefined);
  });

  it("leaves actions without version data alone", () => {
    assert.equal(actionData(null), undefined);
    assert.equal(actionData({ uri: "file:///a.py" }), undefined);
    assert.equal(staleEditMessage("Other", undefined, 1), undefined);
  });
});
