// Builds the dashboard and the offline API docs into a folder (default: static/).
//
//   node build.mjs [OUT]
//
// The output is committed (lsp_server/sidecar/dashboard/static) and shipped as
// package data, so `pip install` gives a working dashboard without Node. The
// build is deterministic: tests/e2e/dashboard/test_bundle.py rebuilds into a
// temporary folder and compares every byte with the committed copy.
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, "static"));
const modules = join(here, "node_modules");

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "swagger-ui"), { recursive: true });

const common = {
  bundle: true,
  minify: true,
  legalComments: "eof",
  target: ["chrome110", "firefox110", "safari16"],
  logLevel: "warning",
  absWorkingDir: here,
};
await build({
  ...common,
  entryPoints: ["src/main.js"],
  outfile: join(out, "dashboard.js"),
  format: "iife",
});
await build({ ...common, entryPoints: ["src/dashboard.css"], outfile: join(out, "dashboard.css") });
await build({ ...common, entryPoints: ["src/docs.js"], outfile: join(out, "docs.js"), format: "iife" });
await build({ ...common, entryPoints: ["src/docs.css"], outfile: join(out, "docs.css") });
copyFileSync(join(here, "src", "index.html"), join(out, "index.html"));

// Swagger UI as published (no second bundling), without the source map
// comments: the maps are not shipped, and a browser would ask for them.
const swagger = join(modules, "swagger-ui-dist");
for (const name of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
  const text = readFileSync(join(swagger, name), "utf8").replace(
    /\n?\/[/*]# sourceMappingURL=[^\n]*$/,
    "\n",
  );
  writeFileSync(join(out, "swagger-ui", name), text);
}
copyFileSync(join(swagger, "LICENSE"), join(out, "swagger-ui", "LICENSE.txt"));
copyFileSync(join(modules, "uplot", "LICENSE"), join(out, "uPlot-LICENSE.txt"));
