// The bundle that the .vsix ships loads outside VS Code against a stub `vscode`
// module: esbuild resolved every import and kept `vscode` external.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import Module from "node:module";
import { join } from "node:path";
import { describe, it } from "node:test";

const bundle = join(__dirname, "..", "..", "dist", "extension.js");

/** Any member of the stub is again a stub: a class to extend, an enum to read. */
function stub(): unknown {
  // A function can be extended as a class and read like an object.
  return new Proxy(function VscodeStub() {}, {
    get(target, property): unknown {
      if (property === "version") {
        return "1.91.0";
      }
      return property in target ? (Reflect.get(target, property) as unknown) : stub();
    },
  });
}

describe("dist/extension.js", () => {
  it("exports activate and deactivate", () => {
    assert.ok(existsSync(bundle), "run `npm run compile` first");
    const loader = Module as unknown as {
      _load: (request: string, parent: unknown, isMain: boolean) => unknown;
    };
    const original = loader._load;
    const requested: string[] = [];
    loader._load = (request, parent, isMain) => {
      if (request === "vscode") {
        requested.push(request);
        return stub();
      }
      return original(request, parent, isMain);
    };
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const extension = require(bundle) as Record<string, unknown>;
      assert.equal(typeof extension.activate, "function");
      assert.equal(typeof extension.deactivate, "function");
      assert.ok(requested.length > 0, "vscode stays external");
    } finally {
      loader._load = original;
    }
  });
});
