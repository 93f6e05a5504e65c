// PYTHON_COMMAND runner with the real python3 of this machine: venvs are built for real (python -m venv, or uv when
// it is on PATH); the package-install case uses a wheel built by the test itself, so it needs no network.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { PythonCommandArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/python_command_args_pb.js";
import {
  PythonCommandResultSchema,
  type PythonCommandResult,
} from "../../worker-container/src/gen/jobworkerp/runner/python_command_result_pb.js";
import { PythonCommandRunnerSettingsSchema } from "../../worker-container/src/gen/jobworkerp/runner/python_command_runner_pb.js";
import { pythonCommandRunner } from "../../worker-container/src/runners/python_command/index.js";
import { VenvCache } from "../../worker-container/src/runners/python_command/venv.js";
import type { RunContext } from "../../worker-container/src/runners/runner.js";
import { expectRunnerError, rejection } from "../helpers/runner_errors.js";

const tmp = mkdtempSync(join(tmpdir(), "py-runner-"));
const venvDir = join(tmp, "venvs");
const runner = pythonCommandRunner({ venvDir });

type Settings = MessageInitShape<typeof PythonCommandRunnerSettingsSchema>;
type Args = MessageInitShape<typeof PythonCommandArgsSchema>;
// The interpreter the default settings use: the machine's python3 (3.11 here).
const PY_VERSION = execFileSync("python3", ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).toString().trim();
const SETTINGS: Settings = { pythonVersion: PY_VERSION };

const ctx = (signal: AbortSignal = new AbortController().signal): RunContext => ({ signal, using: "run", jobId: 1n, metadata: {} });

async function run(settings: Settings, a: Args, signal?: AbortSignal): Promise<PythonCommandResult> {
  const inst = await runner.create(toBinary(PythonCommandRunnerSettingsSchema, create(PythonCommandRunnerSettingsSchema, settings)));
  const out = await inst.run(toBinary(PythonCommandArgsSchema, create(PythonCommandArgsSchema, a)), ctx(signal));
  return fromBinary(PythonCommandResultSchema, out);
}
const script = (s: string): Args["script"] => ({ case: "scriptContent", value: s });

/** Alive and not a zombie (an orphaned zombie may wait for a non-reaping pid 1). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

let http: Server;
let base = "";
beforeAll(async () => {
  http = createServer((req, res) => {
    if (req.url === "/script.py") res.end("import sys\nprint('fetched:' + sys.stdin.read())\n");
    else if (req.url === "/input.txt") res.end("from-url");
    else {
      res.statusCode = 404;
      res.end("no");
    }
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => http.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
});

describe("PYTHON_COMMAND", () => {
  it("runs the script with data_body on stdin and returns stdout and exit code 0", async () => {
    const r = await run(SETTINGS, {
      script: script("import sys\ndata = sys.stdin.read()\nprint(data.upper())\n"),
      inputData: { case: "dataBody", value: "hello python" },
    });
    expect(r.exitCode).toBe(0);
    expect(r.output).toBe("HELLO PYTHON\n");
  });

  it("sets env_vars and runs in the venv's interpreter", async () => {
    const r = await run(SETTINGS, {
      script: script("import os, sys\nprint(os.environ['GREETING'])\nprint(sys.prefix != sys.base_prefix)\n"),
      envVars: { GREETING: "hi there" },
    });
    expect(r.output).toBe("hi there\nTrue\n");
  });

  it("includes stderr in output only with with_stderr", async () => {
    const s = script("import sys\nprint('to-out')\nprint('to-err', file=sys.stderr)\n");
    expect((await run(SETTINGS, { script: s })).output).toBe("to-out\n");
    const both = await run(SETTINGS, { script: s, withStderr: true });
    expect(both.output).toContain("to-out\n");
    expect(both.output).toContain("to-err\n");
  });

  it("returns a non-zero exit code as a result (not a failure), with the traceback under with_stderr", async () => {
    const r = await run(SETTINGS, { script: script("print('before')\nraise SystemExit(3)\n") });
    expect(r).toMatchObject({ exitCode: 3, output: "before\n" });
    const crash = await run(SETTINGS, { script: script("1/0\n"), withStderr: true });
    expect(crash.exitCode).toBe(1);
    expect(crash.output).toMatch(/ZeroDivisionError/);
  });

  it("fetches script_url and data_url; a 404 script_url is FATAL_ERROR", async () => {
    const r = await run(SETTINGS, {
      script: { case: "scriptUrl", value: `${base}/script.py` },
      inputData: { case: "dataUrl", value: `${base}/input.txt` },
    });
    expect(r.output).toBe("fetched:from-url\n");
    await expectRunnerError(run(SETTINGS, { script: { case: "scriptUrl", value: `${base}/missing.py` } }), "FATAL_ERROR", /script_url .* HTTP 404/);
    await expectRunnerError(run(SETTINGS, {}), "FATAL_ERROR", /script_content or script_url is required/);
  });

  it("builds one venv for two concurrent jobs with the same settings and reuses it", async () => {
    // major version only: other settings than the other tests', so a venv of its own
    const settings: Settings = { pythonVersion: PY_VERSION.split(".")[0] };
    const before = runner.venvs.builtCount;
    const prefix = script("import sys\nprint(sys.prefix)\n");
    const [a, b] = await Promise.all([run(settings, { script: prefix }), run(settings, { script: prefix })]);
    const c = await run(settings, { script: prefix });
    expect(a.output).toBe(b.output);
    expect(c.output).toBe(a.output);
    expect(runner.venvs.builtCount - before).toBe(1);
    expect(a.output.trim().startsWith(venvDir)).toBe(true);
  });

  it("two caches (two processes) sharing a directory end with one venv and no temp dirs", async () => {
    const dir = join(tmp, "shared");
    const spec = { pythonVersion: PY_VERSION, packages: [] };
    const [x, y] = await Promise.all([new VenvCache(dir).get(spec), new VenvCache(dir).get(spec)]);
    expect(x.dir).toBe(y.dir);
    expect(readdirSync(dir)).toHaveLength(1);
    expect(existsSync(x.python)).toBe(true);
  });

  it("installs packages from the list (a local wheel built here)", async () => {
    const wheelDir = join(tmp, "wheel");
    execFileSync("python3", [
      "-c",
      `
import base64, hashlib, os, sys, zipfile
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
files = {
  "tinyjw/__init__.py": "VALUE = 'tiny-ok'\\n",
  "tinyjw-0.1.dist-info/METADATA": "Metadata-Version: 2.1\\nName: tinyjw\\nVersion: 0.1\\n",
  "tinyjw-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
def h(s): return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(s.encode()).digest()).rstrip(b"=").decode()
record = "".join("%s,%s,%d\\n" % (n, h(c), len(c.encode())) for n, c in files.items()) + "tinyjw-0.1.dist-info/RECORD,,\\n"
with zipfile.ZipFile(os.path.join(d, "tinyjw-0.1-py3-none-any.whl"), "w") as z:
  for n, c in files.items(): z.writestr(n, c)
  z.writestr("tinyjw-0.1.dist-info/RECORD", record)
`,
      wheelDir,
    ]);
    const settings: Settings = {
      pythonVersion: PY_VERSION,
      requirementsSpec: { case: "packages", value: { list: [join(wheelDir, "tinyjw-0.1-py3-none-any.whl")] } },
    };
    const r = await run(settings, { script: script("import sys, tinyjw\nprint(tinyjw.VALUE)\nprint(sys.prefix)\n") });
    const [value, prefix] = r.output.trim().split("\n");
    expect(value).toBe("tiny-ok");
    // built in place: the venv's own scripts point at its final directory (a renamed venv's would not)
    expect(readFileSync(join(prefix, "bin", "pip"), "utf8").split("\n")[0]).toMatch(new RegExp(`^#!${join(prefix, "bin", "python")}[0-9.]*$`));
    // a package that cannot be installed is FATAL_ERROR with pip's explanation
    await expectRunnerError(
      run({ pythonVersion: PY_VERSION, requirementsSpec: { case: "packages", value: { list: [join(wheelDir, "missing-0.1-py3-none-any.whl")] } } }, { script: script("") }),
      "FATAL_ERROR",
      /package install failed: .*missing-0\.1/s,
    );
  }, 60_000);

  it("kills the script's process group when the job is aborted (timeout/cancel)", async () => {
    const pidFile = join(tmp, "sleeper.pid");
    const ac = new AbortController();
    const p = run(SETTINGS, {
      script: script(`import os, time\nopen(${JSON.stringify(pidFile)}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n`),
    }, ac.signal);
    const t0 = Date.now();
    while (!existsSync(pidFile) || !readFileSync(pidFile, "utf8")) {
      if (Date.now() - t0 > 10_000) throw new Error("script did not start");
      await new Promise((r) => setTimeout(r, 20));
    }
    const pid = Number(readFileSync(pidFile, "utf8"));
    expect(alive(pid)).toBe(true);
    ac.abort(new Error("job timed out"));
    expect(((await rejection(p)) as Error).message).toBe("job timed out");
    const end = Date.now() + 2000;
    while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(alive(pid)).toBe(false);
  });

  it("an unavailable or malformed python_version is FATAL_ERROR with a clear message", async () => {
    await expectRunnerError(run({ pythonVersion: "3.99" }, { script: script("print(1)") }), "FATAL_ERROR", /python 3\.99 is not available/);
    await expectRunnerError(run({ pythonVersion: "latest" }, { script: script("print(1)") }), "FATAL_ERROR", /python_version must look like/);
    // nothing half-built is left behind: no build lock, and every venv there is finished
    const names = readdirSync(venvDir);
    expect(names.filter((n) => n.endsWith(".lock"))).toEqual([]);
    expect(names.filter((n) => !existsSync(join(venvDir, n, ".ready")))).toEqual([]);
  });
});
