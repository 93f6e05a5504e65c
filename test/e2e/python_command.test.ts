// PYTHON_COMMAND through gRPC: settings and args encoded with the proto texts the server serves, run with the
// machine's real python3 in venvs built under a directory of this test (PYTHON_VENV_DIR).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectAlive, uniqueName, useServer } from "../helpers/fixture.js";
import { servedCodec, type ServedCodec } from "../helpers/served_protos.js";

const PYTHON_COMMAND_RUNNER_ID = 6;
const venvDir = mkdtempSync(join(tmpdir(), "e2e-py-venvs-"));
const fx = useServer({ env: { PYTHON_VENV_DIR: venvDir } });
const PY_VERSION = execFileSync("python3", ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).toString().trim();

let codec: ServedCodec;
beforeAll(async () => {
  codec = await servedCodec(fx.api, "PYTHON_COMMAND");
});
afterAll(() => rmSync(venvDir, { recursive: true, force: true }));

async function createPythonWorker(settings: Record<string, unknown>): Promise<string> {
  const { response } = await fx.api.worker.Create({
    name: uniqueName("py"),
    runner_id: { value: PYTHON_COMMAND_RUNNER_ID },
    runner_settings: codec.encodeSettings(settings),
    response_type: "DIRECT",
    retry_policy: { type: "NONE" },
  });
  return response.id.value;
}

async function enqueue(workerId: string, args: Record<string, unknown>) {
  const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: codec.encodeArgs(args), timeout: 60_000 }, { timeoutMs: 90_000 });
  return response.result!.data;
}

describe("PYTHON_COMMAND", () => {
  it("DIRECT: runs the script with data_body on stdin and env_vars; jobs of one worker share one venv", async () => {
    expect(codec.runner.data.runner_settings_proto).toContain("message PythonCommandRunnerSettings");
    const workerId = await createPythonWorker({ python_version: PY_VERSION });
    const args = {
      script_content: "import os, sys\nprint(os.environ['WHO'] + ':' + sys.stdin.read().upper())\nprint('warn', file=sys.stderr)\n",
      data_body: "payload",
      env_vars: { WHO: "e2e" },
      with_stderr: true,
    };
    const results = await Promise.all([enqueue(workerId, args), enqueue(workerId, args), enqueue(workerId, args)]);
    for (const r of results) {
      expect(r.status).toBe("SUCCESS");
      const out = codec.decodeResult(r.output!.items);
      expect(out.exit_code).toBe(0);
      expect(out.output).toContain("e2e:PAYLOAD\n");
      expect(out.output).toContain("warn\n");
    }
    // one venv, even with two worker processes (scalable shape) building it at once
    expect(readdirSync(venvDir)).toHaveLength(1);
  }, 60_000);

  it("a non-zero exit is a SUCCESS result carrying the exit code", async () => {
    const workerId = await createPythonWorker({ python_version: PY_VERSION });
    const r = await enqueue(workerId, { script_content: "print('partial')\nraise SystemExit(4)\n" });
    expect(r.status).toBe("SUCCESS");
    expect(codec.decodeResult(r.output!.items)).toMatchObject({ exit_code: 4, output: "partial\n" });
  });

  it("an unavailable python_version fails the job with FATAL_ERROR and a clear message; the server stays up", async () => {
    const workerId = await createPythonWorker({ python_version: "3.99", packages: { list: [] } });
    const r = await enqueue(workerId, { script_content: "print(1)" });
    expect(r.status).toBe("FATAL_ERROR");
    expect(Buffer.from(r.output!.items).toString()).toMatch(/python 3\.99 is not available/);
    await expectAlive(fx);
  });
});
