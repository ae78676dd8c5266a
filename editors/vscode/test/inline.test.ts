import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { insertAtCursor } from "../src/inline";

describe("insertAtCursor", () => {
  it("anchors items without a range at the cursor, in lists and arrays", () => {
    const list = { items: [{ insertText: "a" }, { insertText: "b", range: "replace" }] };
    insertAtCursor(list, () => "cursor");
    assert.deepEqual(
      list.items.map((item) => item.range),
      ["cursor", "replace"],
    );
    const array: { range?: string }[] = [{}];
    insertAtCursor(array, () => "cursor");
    assert.equal(array[0]?.range, "cursor");
  });

  it("passes empty answers through", () => {
    const cursor = (): string => "cursor";
    assert.equal(insertAtCursor(null, cursor), null);
  });
});
