// ONE_SHOT mode: a fresh process per job, same protocol as a long-running child — the job's line on stdin
// (then EOF), its answer on stdout. The process group is killed once the answer is in (nothing more is needed
// from it), or on timeout/cancel (COMMAND's process helper does the spawning and the killing).
import { create } from "@bufbuild/protobuf";
import { CommandArgsSchema } from "../../gen/jobworkerp/runner/command_args_pb.js";
import { startProcess, type RunningProcess } from "../command/process.js";
import { RunnerError } from "../runner.js";
import type { Answer } from "./child.js";
import { LineSplitter, Tail } from "./lines.js";
import { isReadyLine, parseChildLine, type ChildMessage } from "./protocol.js";
import type { Launch } from "./settings.js";

const MAX_LINE_BYTES = 32 * 1024 * 1024;

export type OneShotLog = (level: "info" | "warn", fields: Record<string, unknown>, msg: string) => void;

export async function runOneShot(
  launch: Launch,
  jobId: string,
  line: string,
  signal: AbortSignal,
  readyLine: string | undefined,
  log: OneShotLog,
): Promise<Answer> {
  let answer: Exclude<ChildMessage, { kind: "other" | "no_retry" }> | undefined;
  let retry = true;
  let proc: RunningProcess | undefined;
  const stderr = new Tail();
  const out = new LineSplitter(
    (l) => {
      if (answer) return;
      const m = parseChildLine(l);
      if (m.kind === "other") {
        // the helper prints its ready line in this mode too
        if (l.trim() !== "" && !isReadyLine(l, readyLine)) log("warn", { pid: proc?.pid, line: l.slice(0, 500) }, "one-shot child wrote a non-protocol stdout line; ignored");
        return;
      }
      if (m.jobId !== jobId) return;
      if (m.kind === "no_retry") retry = false;
      else {
        answer = m;
        proc?.kill();
      }
    },
    MAX_LINE_BYTES,
    () => proc?.kill(),
  );
  const err = new LineSplitter(
    (l) => {
      stderr.add(`${l}\n`);
      log("info", { pid: proc?.pid, stderr: l }, "one-shot child stderr");
    },
    MAX_LINE_BYTES,
    () => undefined,
  );
  proc = await startProcess(
    create(CommandArgsSchema, { command: launch.command, args: launch.args, workingDir: launch.cwd, stdin: line }),
    signal,
    { onStdout: (b) => out.push(b), onStderr: (b) => err.push(b) },
    { env: launch.env },
  );
  const { exitCode } = await proc.done; // rejects on abort (the group is killed) and on spawn failures
  out.end();
  err.end();
  const got = answer as typeof answer; // assigned in the callback above
  if (got?.kind === "result") return { json: got.json, pid: proc.pid ?? 0 };
  if (got?.kind === "error") throw new RunnerError(got.retry ? "ERROR_AND_RETRY" : "FATAL_ERROR", got.message);
  const tail = stderr.value;
  throw new RunnerError(
    retry ? "ERROR_AND_RETRY" : "FATAL_ERROR",
    `process ${proc.pid ?? ""} exited with code ${exitCode} without answering job ${jobId}${tail ? `; stderr: ${tail}` : ""}`,
  );
}
