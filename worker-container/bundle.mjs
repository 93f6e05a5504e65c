#!/usr/bin/env node
// Pre-bundles the runtime for the container image: our TypeScript becomes dist/jobworkerp.mjs (and the small
// dist/healthcheck.mjs), so a container starts without compiling sources through tsx. npm packages stay external
// (node_modules is shipped as installed: native binaries, .proto and .wasm files they read at run time keep
// working). The sources stay beside the bundle: plugin threads load them through tsx.
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = resolve(root, process.argv[2] ?? "dist");

// `import.meta.url` in a bundled module would name the bundle; modules that locate files next to themselves
// (proto texts, the plugin thread entry, package files) get the URL of their source file instead, computed
// from the bundle's own location so the result works wherever the repo layout is kept (the image keeps it).
const sourceUrls = {
  name: "source-import-meta-url",
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      if (!text.includes("import.meta.url")) return undefined;
      const rel = relative(outdir, args.path).split("\\").join("/");
      return { contents: text.replaceAll("import.meta.url", `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: "ts" };
    });
  },
};

await build({
  entryPoints: {
    jobworkerp: resolve(root, "worker-container/src/cli/main.ts"),
    healthcheck: resolve(root, "worker-container/src/cli/healthcheck.ts"),
  },
  outdir,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: "linked",
  logLevel: "warning",
  plugins: [sourceUrls],
});
