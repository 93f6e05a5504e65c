// SUPERVISED_PROCESS runner with real child processes: python3 scripts using python/jobworkerp_worker.py (the
// helper users import), run as a command with the helper on PYTHONPATH, and once in python mode (a real venv).
import { readFileSync, writeFileSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { SupervisedProcess_State } from "../../worker-container/src/gen/jobworkerp/data/worker_instance_pb.js";
import { SupervisedArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/supervised_args_pb.js";
import { SupervisedResultSchema } from "../../worker-container/src/gen/jobworkerp/runner/supervised_result_pb.js";
import {
  SupervisedRunnerSettings_Mode as Mode,
  SupervisedRunnerSettingsSchema,
} from "../../worker-container/src/gen/jobworkerp/runner/supervised_runner_pb.js";
import type { RunContext, RunnerInstance } from "../../worker-container/src/runners/runner.js";
import { memberText } from "../../worker-container/src/runners/supervised/protocol.js";
import { PYTHON_HELPER_DIR } from "../../worker-container/src/runners/supervised/settings.js";
import { supervisedRunner } from "../../worker-container/src/runners/supervised/index.js";
import { expectRunnerError, rejection } from "../helpers/runner_errors.js";
import { sleep, waitUntil } from "../helpers/fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "supervised-runner-"));
const logs: string[] = [];
const runner = supervisedRunner({
  venvDir: join(tmp, "venvs"),
  log: { info: (f, m) => void logs.push(`${m} ${JSON.stringify(f)}`), warn: (f, m) => void logs.push(`WARN ${m} ${JSON.stringify(f)}`) },
});

// One script for most cases: what a job does is chosen by its args.
const SCRIPT = join(tmp, "worker.py");
writeFileSync(
  SCRIPT,
  `import json, os, subprocess, sys, time
import jobworkerp_worker as jw

if os.environ.get("STARTS_FILE"):
    with open(os.environ["STARTS_FILE"], "a") as f:
        f.write("%d\\n" % os.getpid())
time.sleep(float(os.environ.get("LOAD_SECONDS", "0")))

def handle(args, ctx):
    op = args.get("op", "echo") if isinstance(args, dict) else "echo"
    if op == "echo":
        return {"args": args, "pid": os.getpid(), "ctx": [ctx.job_id, ctx.retried, ctx.max_retry, ctx.channel, ctx.using]}
    if op == "print":
        print("a stray print")
        sys.__stdout__.write('{"job_id":"999","result":"not yours"}\\nplain text on stdout\\n')
        sys.__stdout__.flush()
        return "ok"
    if op == "fail":
        raise ValueError("bad thing")
    if op == "noretry":
        raise jw.NoRetry("never again")
    if op == "nan":
        return float("nan")
    if op == "sleep":
        time.sleep(args["seconds"])
        return os.getpid()
    if op == "hold":
        if args.get("declare"):
            ctx.no_retry()
        pids = [os.getpid()]
        if args.get("grandchild"):
            pids.append(subprocess.Popen(["sleep", "600"]).pid)
        with open(args["marker"], "w") as f:
            f.write(" ".join(map(str, pids)))
        time.sleep(600)
    if op == "exit":
        os._exit(args.get("code", 1))
    raise jw.NoRetry("unknown op %s" % op)

jw.run(handle)
`,
);

type Settings = MessageInitShape<typeof SupervisedRunnerSettingsSchema>;
const settingsBytes = (s: Settings) => toBinary(SupervisedRunnerSettingsSchema, create(SupervisedRunnerSettingsSchema, s));
const scriptSettings = (extra: Settings = {}): Settings => ({
  program: { case: "command", value: "python3" },
  args: ["-u", SCRIPT],
  env: { PYTHONPATH: PYTHON_HELPER_DIR },
  ...extra,
  ...(extra.env ? { env: { PYTHONPATH: PYTHON_HELPER_DIR, ...extra.env } } : {}),
});

let workerSeq = 100n;
let jobSeq = 1n;
const opened: Array<{ id: bigint; instances: RunnerInstance[] }> = [];
async function open(s: Settings, opts: { useStatic?: boolean } = {}) {
  const worker = { id: ++workerSeq, name: `w${workerSeq}` };
  const inst = await runner.create(settingsBytes(s), { useStatic: opts.useStatic ?? false, worker });
  opened.push({ id: worker.id, instances: [inst] });
  return { worker, inst };
}
afterEach(async () => {
  for (const o of opened.splice(0)) {
    runner.releaseWorker(o.id);
    await Promise.all(o.instances.map((i) => i.close?.()));
  }
});
afterAll(async () => {
  await runner.closeAll();
  rmSync(tmp, { recursive: true, force: true });
});

function ctx(signal: AbortSignal = new AbortController().signal, extra: Partial<RunContext> = {}): RunContext {
  return { signal, using: "run", jobId: jobSeq++, metadata: {}, retried: 0, maxRetry: 3, channel: "ch", ...extra };
}
const args = (v: unknown) => toBinary(SupervisedArgsSchema, create(SupervisedArgsSchema, { json: JSON.stringify(v) }));
async function run(inst: RunnerInstance, v: unknown, signal?: AbortSignal, extra?: Partial<RunContext>) {
  const r = fromBinary(SupervisedResultSchema, await inst.run(args(v), ctx(signal, extra)));
  return { json: r.json, pid: r.pid, value: JSON.parse(r.json) as any };
}
const slotsOf = (workerId: bigint) => runner.processes().filter((p) => p.workerId === workerId);

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
/** The pids a `hold` job wrote to its marker file, once it is there. */
function markerPids(marker: string): number[] | undefined {
  const pids = existsSync(marker) ? readFileSync(marker, "utf8").split(" ").filter(Boolean).map(Number) : [];
  return pids.length > 0 ? pids : undefined; // the file may exist before its content
}
/** Starts a `hold` job and resolves once the child wrote its marker: [the job's promise, pids]. */
async function holding(inst: RunnerInstance, extra: Record<string, unknown> = {}, signal?: AbortSignal) {
  const marker = join(tmp, `marker-${jobSeq}`);
  const job = run(inst, { op: "hold", marker, ...extra }, signal);
  job.catch(() => undefined);
  const pids = await waitUntil(() => markerPids(marker), { timeoutMs: 20_000, what: "the job to start" });
  return [job, pids] as const;
}

describe("SUPERVISED_PROCESS long-running", () => {
  it("starts once and answers many jobs on the same child; args and result travel verbatim; the job's context reaches the handler", async () => {
    const starts = join(tmp, "starts-1");
    const { worker, inst } = await open(scriptSettings({ env: { STARTS_FILE: starts } }));
    const pids = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const r = await run(inst, { i, big: "x" });
      expect(r.value.args).toEqual({ i, big: "x" });
      pids.add(r.pid);
    }
    expect(pids.size).toBe(1);
    expect(readFileSync(starts, "utf8").trim().split("\n")).toEqual([String([...pids][0])]);
    // integers beyond 2^53 are neither rounded on the way in nor on the way out
    const big = await inst.run(new TextEncoder().encode('{"n": 12345678901234567890123}'), ctx(undefined, { jobId: 77n, retried: 2, maxRetry: 5, channel: "gpu" }));
    const json = fromBinary(SupervisedResultSchema, big).json;
    expect(json).toContain('"args": {"n": 12345678901234567890123}');
    expect(JSON.parse(json).ctx).toEqual(["77", 2, 5, "gpu", "run"]);
    const [slot] = slotsOf(worker.id);
    expect(slot).toMatchObject({ slot: 0, pid: [...pids][0], state: SupervisedProcess_State.READY, restarts: 0, jobsDone: 21n, workerName: worker.name });
  });

  it("a stray print, another job's id and plain text on stdout do not disturb the answer", async () => {
    const { inst } = await open(scriptSettings());
    expect((await run(inst, { op: "print" })).value).toBe("ok");
    expect((await run(inst, { k: 1 })).value.args).toEqual({ k: 1 });
    expect(logs.join("\n")).toMatch(/answered a job it is not running/);
    expect(logs.join("\n")).toMatch(/plain text on stdout/);
    expect(logs.join("\n")).toMatch(/a stray print/); // went to stderr, logged
  });

  it("errors: an exception is retryable, NoRetry and an unserialisable result are not; bad args JSON is FATAL_ERROR", async () => {
    const { inst } = await open(scriptSettings());
    await expectRunnerError(run(inst, { op: "fail" }), "ERROR_AND_RETRY", /ValueError: bad thing/);
    await expectRunnerError(run(inst, { op: "noretry" }), "FATAL_ERROR", /never again/);
    await expectRunnerError(run(inst, { op: "nan" }), "FATAL_ERROR", /not JSON-serialisable/);
    const badArgs = toBinary(SupervisedArgsSchema, create(SupervisedArgsSchema, { json: "{oops" }));
    await expectRunnerError(inst.run(badArgs, ctx()), "FATAL_ERROR", /not valid JSON/);
    expect((await run(inst, { op: "echo" })).value.args).toEqual({ op: "echo" }); // the child is fine
  });

  it("kill -9 mid-job fails only that job (retryable); the next job waits for the restarted child and succeeds", async () => {
    const { worker, inst } = await open(scriptSettings());
    const first = (await run(inst, {})).pid;
    const [job, [pid]] = await holding(inst);
    expect(pid).toBe(first);
    process.kill(pid, "SIGKILL");
    await expectRunnerError(job, "ERROR_AND_RETRY", new RegExp(`child process ${pid} ended while running job \\d+: signal SIGKILL`));
    const next = await run(inst, { after: "kill" }); // sent while the child restarts
    expect(next.pid).not.toBe(pid);
    expect(next.value.args).toEqual({ after: "kill" });
    expect(slotsOf(worker.id)[0]).toMatchObject({ restarts: 1, pid: next.pid, lastExitReason: expect.stringMatching(/SIGKILL/) });
  });

  it("a job that declared retry:false fails as FATAL_ERROR when its child dies", async () => {
    const { inst } = await open(scriptSettings());
    const [job, [pid]] = await holding(inst, { declare: true });
    process.kill(pid, "SIGKILL");
    await expectRunnerError(job, "FATAL_ERROR", /SIGKILL/);
    expect((await run(inst, {})).pid).not.toBe(pid);
  });

  it("a hung job's timeout kills the child's whole process group; the slot restarts and serves the next job", async () => {
    const { worker, inst } = await open(scriptSettings());
    const ac = new AbortController();
    const [job, [pid, grandchild]] = await holding(inst, { grandchild: true }, ac.signal);
    const reason = new Error("job timed out after 300 ms");
    ac.abort(reason);
    expect(await rejection(job)).toBe(reason);
    await waitUntil(() => !alive(pid) && !alive(grandchild), { timeoutMs: 10_000, what: "the child and its grandchild to die" });
    const next = await run(inst, {});
    expect(next.pid).not.toBe(pid);
    expect(slotsOf(worker.id)[0].lastExitReason).toMatch(/killed: job \d+: job timed out after 300 ms/);
    expect(instanceRecovers(inst)).toBe(true);
  });

  it("a child that dies at start fails the waiting job with its stderr and restarts with doubling delays", async () => {
    const starts = join(tmp, "crash-starts");
    const { worker, inst } = await open({
      program: { case: "command", value: "python3" },
      args: ["-c", `import sys, time\nopen(${JSON.stringify(starts)}, "a").write("%f\\n" % time.time())\nsys.stderr.write("boom\\n")\nsys.exit(3)`],
      restartBackoffInitialMs: 100,
      restartBackoffMaxMs: 400,
    });
    await expectRunnerError(run(inst, {}), "ERROR_AND_RETRY", /failed to start: exit code 3; stderr: boom/);
    const times = await waitUntil(
      () => {
        const t = existsSync(starts) ? readFileSync(starts, "utf8").trim().split("\n").map(Number) : [];
        return t.length >= 5 ? t : undefined;
      },
      { timeoutMs: 20_000, what: "5 starts" },
    );
    // each restart waits at least its backoff delay: 100, 200, 400, then capped at 400
    const gaps = times.slice(1, 5).map((t, i) => (t - times[i]) * 1000);
    [100, 200, 400, 400].forEach((min, i) => expect(gaps[i]).toBeGreaterThanOrEqual(min - 5));
    expect(slotsOf(worker.id)[0].restarts).toBeGreaterThanOrEqual(4);
    expect(slotsOf(worker.id)[0].lastExitReason).toBe("exit code 3");
  });

  it("a command that does not exist fails with FATAL_ERROR and leaves the slot STOPPED (no restart loop)", async () => {
    const { worker, inst } = await open({ program: { case: "command", value: "/nonexistent/supervised-child" } });
    await expectRunnerError(run(inst, {}), "FATAL_ERROR", /command not found: \/nonexistent\/supervised-child/);
    await sleep(300);
    expect(slotsOf(worker.id)[0]).toMatchObject({ state: SupervisedProcess_State.STOPPED, restarts: 0 });
    await expectRunnerError(run(inst, {}), "FATAL_ERROR", /command not found/); // tried again on demand
  });

  it("a custom ready_line is waited for; a child that never prints it is killed after ready_timeout_ms", async () => {
    const helloScript = `import sys\nsys.path.insert(0, ${JSON.stringify(PYTHON_HELPER_DIR)})\nimport jobworkerp_worker as jw\njw.run(lambda a, c: a, ready="MODEL LOADED")\n`;
    const ok = await open({ program: { case: "command", value: "python3" }, args: ["-u", "-c", helloScript], readyLine: "MODEL LOADED" });
    expect((await run(ok.inst, [1, 2])).value).toEqual([1, 2]);
    const mute = await open({ program: { case: "command", value: "python3" }, args: ["-c", "import time; time.sleep(60)"], readyTimeoutMs: 500 });
    await expectRunnerError(run(mute.inst, {}), "ERROR_AND_RETRY", /failed to start: no ready line within 500 ms/);
  });

  it("without use_static, concurrent jobs get one child each (warm between jobs); releasing the worker stops them", async () => {
    const { worker, inst } = await open(scriptSettings());
    const pids = await Promise.all([0, 1, 2].map(() => run(inst, { op: "sleep", seconds: 0.5 }).then((r) => r.value as number)));
    expect(new Set(pids).size).toBe(3);
    expect(slotsOf(worker.id).map((s) => s.slot).sort()).toEqual([0, 1, 2]);
    // warm: the next sequential jobs reuse those children
    for (let i = 0; i < 3; i++) expect(pids).toContain((await run(inst, {})).pid);
    expect(slotsOf(worker.id)).toHaveLength(3);
    runner.releaseWorker(worker.id);
    await waitUntil(() => pids.every((p) => !alive(p)) && slotsOf(worker.id).length === 0, { timeoutMs: 10_000, what: "children to stop" });
  });

  it("with use_static, each instance pins its own child; closing the instance stops it", async () => {
    const a = await open(scriptSettings(), { useStatic: true });
    const b = await runner.create(settingsBytes(scriptSettings()), { useStatic: true, worker: a.worker });
    opened[opened.length - 1].instances.push(b);
    const [pa, pb] = [(await run(a.inst, {})).pid, (await run(b, {})).pid];
    expect(pa).not.toBe(pb);
    expect((await run(a.inst, {})).pid).toBe(pa);
    await b.close!();
    expect(alive(pb)).toBe(false);
    expect(slotsOf(a.worker.id).map((s) => s.pid)).toEqual([pa]);
  });

  it("python mode: the script runs in a venv with the helper importable", async () => {
    const { inst } = await open({
      program: { case: "python", value: { script: { case: "scriptContent", value: "import sys, jobworkerp_worker as jw\njw.run(lambda a, c: {'prefix': sys.prefix, 'got': a})\n" } } },
    });
    const r = await run(inst, { hello: "venv" });
    expect(r.value.got).toEqual({ hello: "venv" });
    expect(r.value.prefix).toContain(join(tmp, "venvs"));
  }, 120_000);

  it("settings problems are reported before any job runs", () => {
    const check = (s: Settings) => runner.checkSettings!(settingsBytes(s));
    expect(check(scriptSettings())).toBeUndefined();
    expect(check({})).toMatch(/command or python is required/);
    expect(check({ program: { case: "command", value: " " } })).toMatch(/command is empty/);
    expect(check({ program: { case: "python", value: {} } })).toMatch(/script_path or script_content/);
    expect(check({ program: { case: "python", value: { script: { case: "scriptPath", value: "/x.py" }, pythonVersion: "three" } } })).toMatch(/python_version/);
    expect(check(scriptSettings({ restartBackoffInitialMs: 5000, restartBackoffMaxMs: 1000 }))).toMatch(/exceeds restart_backoff_max_ms/);
    expect(check(scriptSettings({ readyTimeoutMs: 0 }))).toMatch(/ready_timeout_ms/);
    expect(runner.checkSettings!(new Uint8Array([0xff, 0xff]))).toMatch(/invalid SupervisedRunnerSettings/);
  });
});

/** The core keeps a static instance after an aborted run only when it says it recovers. */
const instanceRecovers = (i: RunnerInstance) => i.recoversFromAbort === true;

describe("SUPERVISED_PROCESS one-shot", () => {
  it("runs a fresh process per job with the same protocol", async () => {
    const { worker, inst } = await open(scriptSettings({ mode: Mode.ONE_SHOT }));
    const [a, b] = [await run(inst, { n: 1 }), await run(inst, { n: 2 })];
    expect(a.value.args).toEqual({ n: 1 });
    expect(b.value.args).toEqual({ n: 2 });
    expect(a.pid).not.toBe(b.pid);
    expect(alive(a.pid)).toBe(false);
    expect(slotsOf(worker.id)).toHaveLength(0);
    await expectRunnerError(run(inst, { op: "noretry" }), "FATAL_ERROR", /never again/);
  });

  it("a process that exits without answering is a retryable failure (FATAL_ERROR once it declared retry:false)", async () => {
    const { inst } = await open(scriptSettings({ mode: Mode.ONE_SHOT }));
    await expectRunnerError(run(inst, { op: "exit", code: 7 }), "ERROR_AND_RETRY", /exited with code 7 without answering/);
    const marker = join(tmp, "one-shot-marker");
    const ac = new AbortController();
    const job = run(inst, { op: "hold", marker, declare: true, grandchild: true }, ac.signal);
    job.catch(() => undefined);
    const [pid, grandchild] = await waitUntil(() => markerPids(marker));
    process.kill(pid, "SIGKILL");
    await expectRunnerError(job, "FATAL_ERROR", /without answering/);
    await waitUntil(() => !alive(grandchild), { what: "the grandchild to be killed with the group" });
  });

  it("a timeout kills the process group", async () => {
    const { inst } = await open(scriptSettings({ mode: Mode.ONE_SHOT }));
    const marker = join(tmp, "one-shot-timeout");
    const ac = new AbortController();
    const job = run(inst, { op: "hold", marker }, ac.signal);
    job.catch(() => undefined);
    const [pid] = await waitUntil(() => markerPids(marker));
    const reason = new Error("job timed out after 100 ms");
    ac.abort(reason);
    expect(await rejection(job)).toBe(reason);
    await waitUntil(() => !alive(pid), { what: "the process to be killed" });
  });
});

describe("protocol", () => {
  it("cuts a member's value out of a JSON line as written", () => {
    const line = '{"a": "x\\"}{", "result" : {"n": 1.0, "s": "]\\\\", "l": [1, {"b": null}]}, "z": 12345678901234567890}';
    expect(memberText(line, "result")).toBe('{"n": 1.0, "s": "]\\\\", "l": [1, {"b": null}]}');
    expect(memberText(line, "z")).toBe("12345678901234567890");
    expect(memberText('{"result":null}', "result")).toBe("null");
    expect(memberText("{}", "result")).toBeUndefined();
  });
});
