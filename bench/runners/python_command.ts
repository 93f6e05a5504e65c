// PYTHON_COMMAND: a `print(input())` script with its input on stdin, in a venv built (once) in a temp directory.
// Measures interpreter start-up + the runner's per-job work (script file, process group), not the venv build:
// the bench's warm-up jobs build it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunnerBenchCase } from "./case.js";

export const cases: RunnerBenchCase[] = [
  {
    name: "PYTHON_COMMAND print(input())",
    runner: "PYTHON_COMMAND",
    async prepare() {
      const venvDir = await mkdtemp(join(tmpdir(), "bench-py-venvs-"));
      return {
        settings: { python_version: "" }, // the machine's python3
        args: { script_content: "print(input())", data_body: "hello\n" },
        env: { PYTHON_VENV_DIR: venvDir },
        cleanup: () => rm(venvDir, { recursive: true, force: true }),
      };
    },
  },
];
