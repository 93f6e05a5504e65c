// PLUGIN runner: the no-op plugin (plugins/noop), so the case measures what the plugin machinery adds to a job
// (a worker thread per instance — warm threads are reused for per-job instances — and one message round trip
// per run), next to the built-in NOOP runner. PLUGINS_RUNNER_DIR is a temp dir linking only that plugin.
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RunnerBenchCase } from "./case.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");

export const cases: RunnerBenchCase[] = [
  {
    name: "PLUGIN NoopPlugin (JS module in a worker thread)",
    runner: "NoopPlugin",
    async prepare() {
      const dir = mkdtempSync(join(tmpdir(), "jobworkerp-bench-plugins-"));
      symlinkSync(join(repoRoot, "plugins/noop"), join(dir, "noop"));
      return {
        // the plugin takes no settings (its settings proto is ""): send an empty message
        settings: {},
        args: { payload: Buffer.from("x").toString("base64") },
        env: { PLUGINS_RUNNER_DIR: dir },
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
];
