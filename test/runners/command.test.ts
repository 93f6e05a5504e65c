// COMMAND runner against real child processes.
import { mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { CommandArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/command_args_pb.js";
import { CommandResultSchema, type CommandResult } from "../../worker-container/src/gen/jobworkerp/runner/command_result_pb.js";
import { collectCommandStream, commandRunner } from "../../worker-container/src/runners/command/index.js";
import { RunnerError, type RunContext } from "../../worker-container/src/runners/runner.js";
import { expectRunnerError, rejection } from "../helpers/runner_errors.js";

const tmp = mkdtempSync(join(tmpdir(), "cmd-runner-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ctx = (signal: AbortSignal = new AbortController().signal): RunContext => ({
  signal,
  using: "run",
  jobId: 1n,
  metadata: {},
});
const args = (a: MessageInitShape<typeof CommandArgsSchema>) => toBinary(CommandArgsSchema, create(CommandArgsSchema, a));

async function run(a: MessageInitShape<typeof CommandArgsSchema>, signal?: AbortSignal): Promise<CommandResult> {
  const inst = await commandRunner.create(new Uint8Array());
  return fromBinary(CommandResultSchema, await inst.run(args(a), ctx(signal)));
}


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

async function waitFor<T>(f: () => T | undefined, ms = 2000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const readPid = (file: string) => () => {
  try {
    const n = parseInt(readFileSync(file, "utf8"), 10);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
};

describe("COMMAND definition", () => {
  it("describes the runner and serves its protos", () => {
    expect(commandRunner.id).toBe(1n);
    expect(commandRunner.name).toBe("COMMAND");
    expect(commandRunner.settingsProto).toBe("");
    expect(commandRunner.methods.run.argsProto).toContain("message CommandArgs");
    expect(commandRunner.methods.run.resultProto).toContain("message CommandResult");
  });
});

describe("COMMAND run", () => {
  it("runs a command with args and reports output and timing", async () => {
    const before = Date.now();
    const r = await run({ command: "echo", args: ["hello", "wörld"] });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("hello wörld\n");
    expect(r.stderr).toBe("");
    expect(Number(r.startedAt)).toBeGreaterThanOrEqual(before);
    expect(Number(r.startedAt)).toBeLessThanOrEqual(Date.now());
    expect(r.executionTimeMs).toBeDefined();
    expect(r.maxMemoryUsageKb).toBeUndefined();
  });

  it("does not use a shell", async () => {
    const r = await run({ command: "echo", args: ["$HOME", "a;b"] });
    expect(r.stdout).toBe("$HOME a;b\n");
  });

  it("writes stdin to the process", async () => {
    const r = await run({ command: "cat", stdin: "line1\nline2 ü\n" });
    expect(r.stdout).toBe("line1\nline2 ü\n");
  });

  it("runs in working_dir", async () => {
    const r = await run({ command: "pwd", workingDir: tmp });
    expect(r.stdout!.trim()).toBe(realpathSync(tmp));
  });

  it("rejects a missing working_dir as FATAL_ERROR", async () => {
    await expectRunnerError(run({ command: "pwd", workingDir: join(tmp, "nope") }), "FATAL_ERROR", /working_dir/);
  });

  it("returns a non-zero exit code as a result by default", async () => {
    const r = await run({ command: "sh", args: ["-c", "echo oops >&2; exit 3"] });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toBe("oops\n");
  });

  it("treat_nonzero_as_error → ERROR_AND_RETRY with code and stderr", async () => {
    await expectRunnerError(
      run({ command: "sh", args: ["-c", "echo oops >&2; exit 3"], treatNonzeroAsError: true }),
      "ERROR_AND_RETRY",
      /code 3.*oops/,
    );
  });

  it("success_exit_codes exempt a non-zero code", async () => {
    const r = await run({ command: "sh", args: ["-c", "exit 3"], treatNonzeroAsError: true, successExitCodes: [1, 3] });
    expect(r.exitCode).toBe(3);
  });

  it("reports 128+signal when the process is killed by a signal", async () => {
    const r = await run({ command: "sh", args: ["-c", "kill -TERM $$"] });
    expect(r.exitCode).toBe(143);
    await expectRunnerError(run({ command: "sh", args: ["-c", "kill -KILL $$"], treatNonzeroAsError: true }), "ERROR_AND_RETRY", /137/);
  });

  it("command not found → FATAL_ERROR", async () => {
    await expectRunnerError(run({ command: "no-such-command-xyz" }), "FATAL_ERROR", /not found.*no-such-command-xyz/);
  });

  it("empty command and undecodable args → FATAL_ERROR", async () => {
    await expectRunnerError(run({ command: "" }), "FATAL_ERROR", /empty/);
    const inst = await commandRunner.create(new Uint8Array());
    await expectRunnerError(inst.run(new Uint8Array([0xff, 0xff, 0xff]), ctx()), "FATAL_ERROR", /invalid CommandArgs/);
  });

  it("samples memory when with_memory_monitoring is set", async () => {
    const r = await run({ command: "sleep", args: ["0.15"], withMemoryMonitoring: true });
    expect(r.exitCode).toBe(0);
    expect(r.maxMemoryUsageKb).toBeGreaterThan(0n);
  });

  it("kills background grandchildren when the leader exits", async () => {
    const t0 = Date.now();
    const r = await run({ command: "sh", args: ["-c", "sleep 30 & echo $!"] });
    expect(Date.now() - t0).toBeLessThan(3000); // did not wait for the orphaned sleep
    const pid = Number(r.stdout!.trim());
    await waitFor(() => (alive(pid) ? undefined : true));
  });

  it("abort kills the process group, grandchildren included, and rethrows the reason", async () => {
    const pidFile = join(tmp, "run.pid");
    const ac = new AbortController();
    const p = run({ command: "sh", args: ["-c", `sleep 30 & echo $! > ${pidFile}; wait`] }, ac.signal);
    const grandchild = await waitFor(readPid(pidFile));
    expect(alive(grandchild)).toBe(true);
    const reason = new Error("timeout!");
    const t0 = Date.now();
    ac.abort(reason);
    expect(await rejection(p)).toBe(reason);
    expect(Date.now() - t0).toBeLessThan(1000);
    await waitFor(() => (alive(grandchild) ? undefined : true), 1000);
  });

  it("abort with a non-Error reason → ERROR_AND_RETRY cancelled", async () => {
    const ac = new AbortController();
    const p = run({ command: "sleep", args: ["30"] }, ac.signal);
    setTimeout(() => ac.abort("stop"), 50);
    await expectRunnerError(p, "ERROR_AND_RETRY", /cancelled/);
  });

  it("an already-aborted signal does not start the process", async () => {
    const pidFile = join(tmp, "never.pid");
    await expectRunnerError(
      run({ command: "sh", args: ["-c", `echo $$ > ${pidFile}`] }, AbortSignal.abort("x")),
      "ERROR_AND_RETRY",
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(readPid(pidFile)()).toBeUndefined();
  });
});

describe("COMMAND runStream", () => {
  const stream = async (a: MessageInitShape<typeof CommandArgsSchema>, signal?: AbortSignal) => {
    const inst = await commandRunner.create(new Uint8Array());
    return inst.runStream!(args(a), ctx(signal))[Symbol.asyncIterator]();
  };
  const collect = async (it: AsyncIterator<Uint8Array>) => {
    const out: CommandResult[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) out.push(fromBinary(CommandResultSchema, r.value));
    return out;
  };

  it("yields stdout/stderr chunks in order, then a final exit chunk", async () => {
    const chunks = await collect(
      await stream({
        command: "sh",
        args: ["-c", "echo a; sleep 0.05; echo b >&2; sleep 0.05; echo c"],
        withMemoryMonitoring: true,
      }),
    );
    const body = chunks.slice(0, -1).map((c) => (c.stdout !== undefined ? `out:${c.stdout}` : `err:${c.stderr}`));
    expect(body).toEqual(["out:a\n", "err:b\n", "out:c\n"]);
    const last = chunks.at(-1)!;
    expect(last.exitCode).toBe(0);
    expect(last.stdout).toBeUndefined();
    expect(last.startedAt).toBeGreaterThan(0n);
    expect(last.executionTimeMs).toBeGreaterThanOrEqual(100n);
    expect(last.maxMemoryUsageKb).toBeGreaterThan(0n);
    for (const c of chunks.slice(0, -1)) expect(c.exitCode).toBeUndefined();
  });

  it("throws after the output when a non-zero exit is an error", async () => {
    const it = await stream({ command: "sh", args: ["-c", "echo partial; echo bad >&2; exit 2"], treatNonzeroAsError: true });
    const seen: string[] = [];
    const e = await rejection(
      (async () => {
        for (let r = await it.next(); !r.done; r = await it.next()) {
          const c = fromBinary(CommandResultSchema, r.value);
          seen.push(c.stdout ?? c.stderr ?? "");
        }
      })(),
    );
    expect(seen.join("")).toContain("partial");
    expect((e as RunnerError).kind).toBe("ERROR_AND_RETRY");
    expect((e as RunnerError).message).toMatch(/code 2.*bad/);
  });

  it("abort kills the grandchild and rejects promptly", async () => {
    const ac = new AbortController();
    const it = await stream({ command: "sh", args: ["-c", "sleep 30 & echo $!; wait"] }, ac.signal);
    const first = await it.next();
    const grandchild = Number(fromBinary(CommandResultSchema, first.value as Uint8Array).stdout);
    expect(alive(grandchild)).toBe(true);
    const t0 = Date.now();
    const pending = it.next();
    ac.abort(new Error("cancelled by test"));
    expect(((await rejection(pending)) as Error).message).toBe("cancelled by test");
    expect(Date.now() - t0).toBeLessThan(1000);
    await waitFor(() => (alive(grandchild) ? undefined : true), 1000);
  });

  it("stopping iteration early kills the process", async () => {
    const it = await stream({ command: "sh", args: ["-c", "echo $$; exec sleep 30"] });
    const leader = Number(fromBinary(CommandResultSchema, (await it.next()).value as Uint8Array).stdout);
    expect(alive(leader)).toBe(true);
    await it.return!();
    await waitFor(() => (alive(leader) ? undefined : true), 1000);
  });

  it("command not found → FATAL_ERROR", async () => {
    const it = await stream({ command: "no-such-command-xyz" });
    await expectRunnerError(it.next(), "FATAL_ERROR");
  });
});

describe("COMMAND collectStream", () => {
  it("joins a real stream's stdout/stderr pieces and keeps the final chunk's exit code, like run", async () => {
    const a = { command: "/bin/sh", args: ["-c", "echo a; echo e >&2; sleep 0.1; echo b; exit 3"] };
    const inst = await commandRunner.create(new Uint8Array());
    const chunks: Uint8Array[] = [];
    for await (const c of inst.runStream!(args(a), ctx())) chunks.push(c);
    expect(chunks.length).toBeGreaterThan(2);
    expect(commandRunner.methods.run.collectStream).toBe(collectCommandStream);
    const collected = fromBinary(CommandResultSchema, collectCommandStream(chunks));
    const unary = await run(a);
    expect({ exitCode: collected.exitCode, stdout: collected.stdout, stderr: collected.stderr }).toEqual({ exitCode: 3, stdout: "a\nb\n", stderr: "e\n" });
    expect({ exitCode: unary.exitCode, stdout: unary.stdout, stderr: unary.stderr }).toEqual({ exitCode: 3, stdout: "a\nb\n", stderr: "e\n" });
    expect(collected.executionTimeMs).toBeDefined();
  });
});
