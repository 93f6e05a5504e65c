// `run` tasks: jobworkerp's runner / worker / function (jobs through the real queue), shell (COMMAND through
// /bin/sh), script (python through PYTHON_COMMAND) and nested workflows; `await: false` enqueues and goes on.
import { WorkflowError } from "./errors.js";
import { evalTemplate, type Vars } from "./expressions.js";
import type { JobCall, JobHost } from "./host.js";
import type { WorkflowEvent } from "./engine.js";
import type { Def } from "./validate.js";

export interface RunTaskContext {
  host?: JobHost;
  signal: AbortSignal;
  at: string;
  emit(e: WorkflowEvent): void;
  runNested(def: Def, input: unknown, signal: AbortSignal): Promise<unknown>;
  loadNested?(src: { data?: string | object; url?: string }): Promise<Def>;
}

type Return = "stdout" | "stderr" | "code" | "all" | "none";

function metadataOf(task: Def): Record<string, string> | undefined {
  if (!task.metadata) return undefined;
  return Object.fromEntries(Object.entries(task.metadata as Record<string, unknown>).filter(([, v]) => typeof v === "string")) as Record<string, string>;
}

async function callJob(c: JobCall, ctx: RunTaskContext): Promise<unknown> {
  if (!ctx.host) throw WorkflowError.of("configuration", "no job system", "run tasks need the job system (not available here)", ctx.at);
  let streamed = false;
  try {
    return await ctx.host.call(c, ctx.signal, {
      onStarted: (jobId, runnerName, workerName, s) => {
        streamed = !!s;
        const started = { job_id: jobId, runner_name: runnerName, worker_name: workerName, position: ctx.at };
        ctx.emit(streamed ? { streaming_job_started: started } : { job_started: started });
      },
      onData: (jobId, data) => ctx.emit({ streaming_data: { job_id: jobId, data } }),
      onCompleted: (jobId, resultId) => {
        const completed = { job_id: jobId, job_result_id: resultId, position: ctx.at };
        ctx.emit(streamed ? { streaming_job_completed: completed } : { job_completed: completed });
      },
    });
  } catch (e) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (e instanceof WorkflowError) throw e;
    throw WorkflowError.of("runtime", "job failed", (e as Error).message, ctx.at);
  }
}

/** Shell/script results as the `return` field asks; a non-zero exit fails unless the code is asked for. */
function processOutput(ret: Return, code: number, stdout: string, stderr: string, at: string): unknown {
  if (code !== 0 && ret !== "code" && ret !== "all") {
    throw WorkflowError.of("runtime", "process failed", `exit code ${code}${stderr.trim() ? `: ${stderr.trim().slice(-500)}` : ""}`, at);
  }
  switch (ret) {
    case "stderr":
      return stderr;
    case "code":
      return code;
    case "all":
      return { code, stdout, stderr };
    case "none":
      return null;
    default:
      return stdout;
  }
}

export async function runRunTask(task: Def, input: unknown, vars: Vars, ctx: RunTaskContext): Promise<unknown> {
  const r = task.run as Def;
  const noWait = r.await === false;
  // jobworkerp's useStreaming: the child job streams its chunks (as events) and they are collected into the output
  const stream = task.useStreaming === true || undefined;
  const ev = <T>(v: T) => evalTemplate(v, input, vars);
  const metadata = metadataOf(task);
  const ret: Return = r.return ?? "stdout";
  let out: unknown;

  if (r.runner || r.function?.runnerName) {
    const f = (r.runner ?? r.function) as Def;
    out = await callJob(
      { runner: String(ev(f.name ?? f.runnerName)), settings: ev(f.settings), args: ev(f.arguments), using: f.using === undefined ? undefined : String(ev(f.using)), options: f.options, noWait, metadata, stream },
      ctx,
    );
  } else if (r.worker || r.function?.workerName) {
    const f = (r.worker ?? r.function) as Def;
    out = await callJob({ worker: String(ev(f.name ?? f.workerName)), args: ev(f.arguments), using: f.using === undefined ? undefined : String(ev(f.using)), noWait, metadata, stream }, ctx);
  } else if (r.shell !== undefined) {
    const sh = (typeof r.shell === "string" ? { command: r.shell } : r.shell) as Def;
    const command = String(ev(sh.command));
    let args: Def;
    if (Array.isArray(sh.args)) {
      // jobworkerp's form: a program and its arguments, no shell
      args = { command, args: (ev(sh.args) as unknown[]).map(String), working_dir: sh.workingDir, with_memory_monitoring: sh.withMemoryMonitoring };
    } else {
      const a = ev(sh.arguments ?? []) as unknown;
      const positional = Array.isArray(a) ? a.map(String) : Object.entries((a ?? {}) as Def).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
      const env = Object.entries((ev(sh.environment ?? {}) ?? {}) as Def).map(([k, v]) => `${k}=${String(v)}`);
      args = { command: "/usr/bin/env", args: [...env, "/bin/sh", "-c", command, "sh", ...positional], working_dir: sh.workingDir };
    }
    const res = (await callJob({ runner: "COMMAND", args, noWait, metadata, stream }, ctx)) as Def;
    if (noWait) return input;
    return processOutput(ret, Number(res.exit_code ?? 0), res.stdout ?? "", res.stderr ?? "", ctx.at);
  } else if (r.script) {
    const s = r.script as Def;
    if (!s.code) throw WorkflowError.of("configuration", "unsupported script", "only inline `code` scripts are supported", ctx.at);
    const env = Object.fromEntries(Object.entries((ev(s.environment ?? {}) ?? {}) as Def).map(([k, v]) => [k, String(v)]));
    const a = s.arguments === undefined ? undefined : ev(s.arguments);
    const args: Def = { script_content: String(s.code), env_vars: env, with_stderr: true };
    // arguments reach the script as JSON on stdin
    if (a !== undefined) args.data_body = typeof a === "string" ? a : JSON.stringify(a);
    const res = (await callJob({ runner: "PYTHON_COMMAND", settings: {}, args, noWait, metadata }, ctx)) as Def;
    if (noWait) return input;
    return processOutput(ret, Number(res.exit_code ?? 0), String(res.output ?? ""), "", ctx.at);
  } else if (r.workflow) {
    const w = r.workflow as Def;
    if (!ctx.loadNested) throw WorkflowError.of("configuration", "nested workflows unavailable", "no loader for nested workflows", ctx.at);
    const def = await ctx.loadNested({ data: w.workflowData, url: w.workflowUrl }).catch((e: Error) => {
      throw WorkflowError.of("configuration", "bad nested workflow", e.message, ctx.at);
    });
    const nestedInput = w.input === undefined ? input : ev(w.input);
    if (noWait) {
      void ctx.runNested(def, nestedInput, new AbortController().signal).catch(() => undefined);
      return input;
    }
    return ctx.runNested(def, nestedInput, ctx.signal);
  } else {
    throw WorkflowError.of("configuration", "unsupported run task", `run.${Object.keys(r).filter((k) => k !== "await" && k !== "return")[0]} is not supported`, ctx.at);
  }
  // jobworkerp: with await false the task's output is its input
  return noWait ? input : out;
}
