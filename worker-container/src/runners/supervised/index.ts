// SUPERVISED_PROCESS runner (jobworkerp-ts only): jobs go to a program (or a Python script) that stays up
// between jobs, over a JSON-lines protocol (protocol.ts; python/jobworkerp_worker.py is the Python side).
// A model loaded at start-up is loaded once per child, not once per job.
//
// LONG_RUNNING (default): one warm child per concurrency slot of the worker, in this process (group.ts): the
// static pool's slots with use_static, else slots added as jobs run at once. A child that dies fails only its
// in-flight job and is restarted with backoff (child.ts); the worker process stays healthy, and every child's
// state and restarts are reported in this process's WorkerInstance (WorkerInstanceService).
// ONE_SHOT: a fresh process per job, same protocol (one_shot.ts).
//
// Failures: the child's {"error", "retry": false} (or a declared {"retry": false} before it dies) becomes
// FATAL_ERROR, which the core never retries whatever the worker's retry policy; other errors, crashes and hangs
// are ERROR_AND_RETRY.
import { createHash } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import {
  SupervisedProcess_State,
  SupervisedProcessSchema,
  type SupervisedProcess,
  type WorkerInstanceData,
} from "../../gen/jobworkerp/data/worker_instance_pb.js";
import { SupervisedArgsSchema } from "../../gen/jobworkerp/runner/supervised_args_pb.js";
import { SupervisedResultSchema } from "../../gen/jobworkerp/runner/supervised_result_pb.js";
import { SupervisedRunnerSettingsSchema, type SupervisedRunnerSettings } from "../../gen/jobworkerp/runner/supervised_runner_pb.js";
import type { InstanceReporter } from "../../core/instance_reporter.js";
import { protoText } from "../proto_text.js";
import { VenvCache } from "../python_command/venv.js";
import { RunnerError, type CreateOptions, type RunContext, type RunnerDefinition, type RunnerInstance } from "../runner.js";
import type { Answer } from "./child.js";
import { ChildGroup, type WorkerRef } from "./group.js";
import { runOneShot } from "./one_shot.js";
import { argsJson, jobLine } from "./protocol.js";
import { decodeSettings, Mode, settingsProblem } from "./settings.js";

/** Far from jobworkerp's built-in ids (1..8, 32768..) and from the snowflake ids of dynamic runners. */
export const SUPERVISED_RUNNER_ID = 40000n;

/** The structured logger the runner writes child output and lifecycle events to (pino's Logger fits). */
export interface SupervisedLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

export interface SupervisedRunnerOptions {
  /** Where Python venvs are kept (config PYTHON_VENV_DIR, shared with PYTHON_COMMAND). */
  venvDir: string;
  log?: SupervisedLog;
}

export type SupervisedRunner = RunnerDefinition &
  InstanceReporter & {
    /** The worker changed, was deleted or released: its shared children stop (busy ones after their job). */
    releaseWorker(workerId: bigint): void;
    /** Stops every child (shutdown). */
    closeAll(): Promise<void>;
    /** Current slots, for tests and reports. */
    processes(): SupervisedProcess[];
  };

const STATE = {
  STARTING: SupervisedProcess_State.STARTING,
  READY: SupervisedProcess_State.READY,
  BUSY: SupervisedProcess_State.BUSY,
  RESTARTING: SupervisedProcess_State.RESTARTING,
  STOPPED: SupervisedProcess_State.STOPPED,
} as const;

const encodeResult = (a: Answer) => toBinary(SupervisedResultSchema, create(SupervisedResultSchema, { json: a.json, pid: a.pid }));

function lineFor(bytes: Uint8Array, ctx: RunContext): [string, string] {
  const jobId = ctx.jobId.toString();
  return [jobId, jobLine(jobId, argsJson(bytes), ctx)];
}

export function supervisedRunner(opts: SupervisedRunnerOptions): SupervisedRunner {
  const venvs = new VenvCache(opts.venvDir);
  /** Groups new jobs go to, by worker id + settings. */
  const groups = new Map<string, ChildGroup>();
  /** Every group that still has children (retired ones included), for reports and shutdown. */
  const live = new Set<ChildGroup>();
  const notableListeners = new Set<() => void>();
  const log = (level: "info" | "warn", fields: Record<string, unknown>, msg: string) => opts.log?.[level](fields, msg);
  const events = {
    notable: () => notableListeners.forEach((l) => l()),
    log,
    empty: (g: ChildGroup) => live.delete(g),
  };

  function groupFor(bytes: Uint8Array, s: SupervisedRunnerSettings, worker: WorkerRef): ChildGroup {
    const key = `${worker.id}:${createHash("sha256").update(bytes).digest("base64")}`;
    let g = groups.get(key);
    if (!g) {
      g = new ChildGroup(worker, s, venvs, events);
      groups.set(key, g);
      live.add(g);
    }
    return g;
  }

  function processes(): SupervisedProcess[] {
    return [...live].flatMap((g) =>
      g.status().map((st) =>
        create(SupervisedProcessSchema, {
          workerId: g.worker.id,
          workerName: g.worker.name,
          slot: st.slot,
          pid: st.pid,
          state: STATE[st.state],
          restarts: st.restarts,
          lastExitReason: st.lastExitReason,
          lastStartedAt: st.lastStartedAt === undefined ? undefined : BigInt(st.lastStartedAt),
          jobsDone: BigInt(st.jobsDone),
        }),
      ),
    );
  }

  return {
    id: SUPERVISED_RUNNER_ID,
    name: "SUPERVISED_PROCESS",
    description:
      "Sends each job as one JSON line to a long-running child process (a command, or a Python script in a venv) that loads once, restarted with backoff when it dies; or to a fresh process per job (ONE_SHOT).",
    runnerType: RunnerType.SUPERVISED_PROCESS,
    settingsProto: protoText("jobworkerp/runner/supervised_runner.proto"),
    settingsSchema: SupervisedRunnerSettingsSchema,
    methods: {
      run: {
        argsProto: protoText("jobworkerp/runner/supervised_args.proto"),
        resultProto: protoText("jobworkerp/runner/supervised_result.proto"),
        argsSchema: SupervisedArgsSchema,
        resultSchema: SupervisedResultSchema,
        description: "Send the job's JSON to a child and return its JSON result.",
        outputType: StreamingOutputType.NON_STREAMING,
        acceptsJsonArgs: true,
      },
    },

    checkSettings(bytes) {
      try {
        return settingsProblem(decodeSettings(bytes));
      } catch (e) {
        return (e as Error).message;
      }
    },

    async create(bytes: Uint8Array, o?: CreateOptions): Promise<RunnerInstance> {
      const s = decodeSettings(bytes);
      const problem = settingsProblem(s);
      if (problem) throw new RunnerError("FATAL_ERROR", problem);
      const g = groupFor(bytes, s, o?.worker ?? { id: 0n, name: "" });
      if (s.mode === Mode.ONE_SHOT) {
        return {
          recoversFromAbort: true, // nothing outlives the job
          async run(args, ctx) {
            const [jobId, line] = lineFor(args, ctx);
            const launch = await g.launch();
            return encodeResult(await runOneShot(launch, jobId, line, ctx.signal, s.readyLine, (level, f, msg) => log(level, { worker: g.worker.name, ...f }, msg)));
          },
        };
      }
      if (o?.useStatic) {
        const child = g.pin();
        return {
          recoversFromAbort: true, // the child killed on abort restarts by itself
          async run(args, ctx) {
            const [jobId, line] = lineFor(args, ctx);
            return encodeResult(await child.run(jobId, line, ctx.signal));
          },
          close: () => g.unpin(child),
        };
      }
      g.warm();
      return {
        recoversFromAbort: true,
        async run(args, ctx) {
          const [jobId, line] = lineFor(args, ctx);
          return encodeResult(await g.runShared(jobId, line, ctx.signal));
        },
      };
    },

    report(data: WorkerInstanceData) {
      data.supervisedProcesses = processes();
    },
    onNotable(listener) {
      notableListeners.add(listener);
    },
    releaseWorker(workerId) {
      for (const [key, g] of groups) {
        if (g.worker.id !== workerId) continue;
        groups.delete(key);
        g.retire();
      }
    },
    async closeAll() {
      groups.clear();
      await Promise.all([...live].map((g) => g.stopAll()));
    },
    processes,
  };
}
