// WORKFLOW runner (32769): `run` (default) runs a workflow from the args or the worker's settings (args win);
// `create` makes a WORKFLOW worker from a validated definition.
//
// A streamed `run` (EnqueueForStream / ListenStream) sends, as `data` chunks:
//   1. one jobworkerp.data.WorkflowEvent per engine event, as it happens (task_started, job_started with the
//      child job's id, job_completed, task_completed, for_item_failed, ...; a `useStreaming` run task's child
//      gives streaming_job_started, one streaming_data per chunk of its output, streaming_job_completed);
//   2. one empty chunk (a WorkflowEvent with no event): the events are over;
//   3. the final jobworkerp.runner.WorkflowResult (the method's result_proto); then the stream's `end`.
// A client decodes chunks as WorkflowEvent until the empty one, and the next with result_proto. The final result
// is also simply the last data chunk, so clients that reduce a stream to its last chunk (jobworkerp-rs's
// collect_stream of WorkflowResult snapshots) still get it. A failing job ends with the job's error status.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { QueueType, ResponseType, RetryType, RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import { WorkerDataSchema } from "../../gen/jobworkerp/data/worker_pb.js";
import { CreateWorkflowArgsSchema, type CreateWorkflowArgs } from "../../gen/jobworkerp/runner/create_workflow_args_pb.js";
import { CreateWorkflowResultSchema } from "../../gen/jobworkerp/runner/create_workflow_result_pb.js";
import { WorkflowRunArgsSchema, type WorkflowRunArgs } from "../../gen/jobworkerp/runner/workflow_args_pb.js";
import { WorkflowResult_WorkflowStatus, WorkflowResultSchema } from "../../gen/jobworkerp/runner/workflow_result_pb.js";
import { WorkflowRunnerSettingsSchema, type WorkflowRunnerSettings } from "../../gen/jobworkerp/runner/workflow_runner_pb.js";
import { protoText } from "../proto_text.js";
import { RunnerError, type RunContext, type RunnerDefinition, type RunnerInstance } from "../runner.js";
import { MemoryCheckpoints, type CheckpointData } from "./checkpoint.js";
import type { Outcome, WorkflowEvent } from "./engine.js";
import { DefinitionError } from "./errors.js";
import { END_OF_EVENTS, encodeEvent } from "./events.js";
import type { JobHost } from "./host.js";
import type { Source } from "./load.js";
import { prepareWorkflow, runWorkflow } from "./workflow.js";

export interface WorkflowRunnerOptions {
  host: JobHost;
  /** WORKFLOW_ALLOW_PRIVATE_URLS */
  allowPrivateUrls?: boolean;
  /** WORKFLOW_TASK_DEFAULT_TIMEOUT_SEC × 1000 */
  defaultTimeoutMs?: number;
  /** WORKFLOW_SECRET_<NAME> values */
  secret?(name: string): string | undefined;
}

function decode<D extends DescMessage>(schema: D, bytes: Uint8Array, what: string): MessageShape<D> {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid ${what}: ${(e as Error).message}`);
  }
}

function jsonObject(text: string | undefined, what: string): Record<string, unknown> {
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `${what} is not JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new RunnerError("FATAL_ERROR", `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** Input text: JSON, or else the text itself as a string. */
function parseInput(text: string): unknown {
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const sourceOf = (s: WorkflowRunArgs["workflowSource"] | WorkflowRunnerSettings["workflowSource"]): Source | undefined =>
  s.case === "workflowData" ? { data: s.value } : s.case === "workflowUrl" ? { url: s.value } : undefined;

const STATUS: Record<Outcome["status"], WorkflowResult_WorkflowStatus> = {
  Completed: WorkflowResult_WorkflowStatus.Completed,
  Faulted: WorkflowResult_WorkflowStatus.Faulted,
  Cancelled: WorkflowResult_WorkflowStatus.Cancelled,
  Waiting: WorkflowResult_WorkflowStatus.Waiting,
};

function encodeOutcome(o: Outcome): Uint8Array {
  return toBinary(
    WorkflowResultSchema,
    create(WorkflowResultSchema, {
      id: o.id,
      output: JSON.stringify(o.output ?? null),
      position: o.position,
      status: STATUS[o.status],
      errorMessage: o.error ? JSON.stringify(o.error) : undefined,
    }),
  );
}

/** Checkpoints of hosts without a Store (kept in this process only). */
const processCheckpoints = new MemoryCheckpoints();

function resumeOf(args: WorkflowRunArgs): { position: string; data?: CheckpointData } | undefined {
  const c = args.fromCheckpoint;
  if (!c) return undefined;
  if (!c.position) throw new RunnerError("FATAL_ERROR", "from_checkpoint.position is required");
  if (!args.executionId) throw new RunnerError("FATAL_ERROR", "from_checkpoint needs execution_id");
  const d = c.data;
  const data: CheckpointData | undefined = d && {
    workflow: { name: d.workflow?.name ?? "", input: d.workflow?.input ?? "", context_variables: d.workflow?.contextVariables ?? "" },
    task: { input: d.task?.input ?? "", output: d.task?.output ?? "", context_variables: d.task?.contextVariables ?? "", flow_directive: d.task?.flowDirective ?? "" },
  };
  return { position: c.position, data };
}

class WorkflowInstance implements RunnerInstance {
  constructor(
    private readonly settings: WorkflowRunnerSettings,
    private readonly opts: WorkflowRunnerOptions,
  ) {}

  private async start(bytes: Uint8Array, ctx: RunContext, onEvent?: (e: WorkflowEvent) => void): Promise<Outcome> {
    const args = decode(WorkflowRunArgsSchema, bytes, "WorkflowRunArgs");
    const src = sourceOf(args.workflowSource) ?? sourceOf(this.settings.workflowSource);
    if (!src) throw new RunnerError("FATAL_ERROR", "no workflow: set workflow_data or workflow_url in the args or the worker's settings");
    const loadOptions = { allowPrivateUrls: this.opts.allowPrivateUrls };
    let def;
    try {
      def = await prepareWorkflow(src, { ...loadOptions, host: this.opts.host });
    } catch (e) {
      throw new RunnerError("FATAL_ERROR", (e as Error).message);
    }
    // settings keys win over the args' (the worker's owner fixed them)
    const context = { ...jsonObject(args.workflowContext, "workflow_context"), ...jsonObject(this.settings.workflowContext, "settings workflow_context") };
    return runWorkflow(def, {
      input: parseInput(args.input),
      context,
      host: this.opts.host,
      signal: ctx.signal,
      onEvent,
      secret: this.opts.secret,
      defaultTimeoutMs: this.opts.defaultTimeoutMs,
      loadOptions,
      id: args.executionId || undefined,
      executionId: args.executionId || undefined,
      checkpoints: this.opts.host.checkpoints ?? processCheckpoints,
      resume: resumeOf(args),
    });
  }

  async run(bytes: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
    if (ctx.using === "create") return this.create(bytes);
    return encodeOutcome(await this.start(bytes, ctx));
  }

  async *runStream(bytes: Uint8Array, ctx: RunContext): AsyncGenerator<Uint8Array> {
    if (ctx.using === "create") {
      yield await this.create(bytes);
      return;
    }
    const queue: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    const onEvent = (e: WorkflowEvent) => {
      queue.push(encodeEvent(e));
      wake?.();
    };
    let done = false;
    let final: Outcome | undefined;
    let failure: unknown;
    const running = this.start(bytes, ctx, onEvent).then(
      (o) => void (final = o),
      (e) => void (failure = e),
    );
    void running.finally(() => {
      done = true;
      wake?.();
    });
    while (!done || queue.length) {
      if (queue.length) {
        yield queue.shift()!;
        continue;
      }
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
    if (failure) throw failure;
    yield END_OF_EVENTS;
    yield encodeOutcome(final!);
  }

  private async create(bytes: Uint8Array): Promise<Uint8Array> {
    const a: CreateWorkflowArgs = decode(CreateWorkflowArgsSchema, bytes, "CreateWorkflowArgs");
    if (!a.name) throw new RunnerError("FATAL_ERROR", "name (the worker's name) is required");
    const src = sourceOf(a.workflowSource);
    if (!src) throw new RunnerError("FATAL_ERROR", "no workflow: set workflow_data or workflow_url");
    try {
      await prepareWorkflow(src, { allowPrivateUrls: this.opts.allowPrivateUrls, host: this.opts.host });
    } catch (e) {
      throw new RunnerError("FATAL_ERROR", e instanceof DefinitionError ? e.message : `cannot load the workflow: ${(e as Error).message}`);
    }
    if (a.workflowContext) jsonObject(a.workflowContext, "workflow_context");
    const o = a.workerOptions;
    const settings = create(WorkflowRunnerSettingsSchema, { workflowSource: a.workflowSource, workflowContext: a.workflowContext });
    const rp = o?.retryPolicy;
    let id: bigint;
    try {
      id = await this.opts.host.createWorker!(
        create(WorkerDataSchema, {
          name: a.name,
          description: "workflow worker (WORKFLOW create)",
          runnerId: { value: 32769n },
          runnerSettings: toBinary(WorkflowRunnerSettingsSchema, settings),
          channel: o?.channel,
          queueType: o ? [QueueType.NORMAL, QueueType.WITH_BACKUP, QueueType.DB_ONLY][o.queueType] : QueueType.NORMAL,
          responseType: o?.responseType === 0 ? ResponseType.NO_RESULT : ResponseType.DIRECT,
          storeSuccess: o?.storeSuccess ?? false,
          storeFailure: o?.storeFailure ?? true,
          useStatic: o?.useStatic ?? false,
          broadcastResults: o?.broadcastResults ?? true,
          // jobworkerp's default for workers made from workflows/functions
          retryPolicy: rp
            ? { type: rp.type as number as RetryType, interval: rp.interval, maxInterval: rp.maxInterval, maxRetry: rp.maxRetry, basis: rp.basis }
            : { type: RetryType.EXPONENTIAL, interval: 3000, maxInterval: 60000, maxRetry: 3, basis: 2 },
        }),
      );
    } catch (e) {
      throw new RunnerError("FATAL_ERROR", `cannot create worker '${a.name}': ${(e as Error).message}`);
    }
    return toBinary(CreateWorkflowResultSchema, create(CreateWorkflowResultSchema, { workerId: { value: id } }));
  }
}

export function workflowRunner(opts: WorkflowRunnerOptions): RunnerDefinition {
  const text = (f: string) => protoText(`jobworkerp/runner/${f}.proto`);
  return {
    id: 32769n,
    name: "WORKFLOW",
    description: "Runs workflows in the Serverless Workflow 1.0 DSL (jq/Liquid expressions; run tasks call runners and workers), or creates a workflow worker.",
    runnerType: RunnerType.WORKFLOW,
    settingsProto: text("workflow_runner"),
    settingsSchema: WorkflowRunnerSettingsSchema,
    defaultMethod: "run",
    methods: {
      run: {
        argsProto: text("workflow_args"),
        resultProto: text("workflow_result"),
        argsSchema: WorkflowRunArgsSchema,
        resultSchema: WorkflowResultSchema,
        description: "Run a workflow (source in args or the worker's settings; args win) with an input and context variables.",
        outputType: StreamingOutputType.BOTH,
      },
      create: {
        argsProto: text("create_workflow_args"),
        resultProto: text("create_workflow_result"),
        argsSchema: CreateWorkflowArgsSchema,
        resultSchema: CreateWorkflowResultSchema,
        description: "Validate a workflow definition and create a WORKFLOW worker that runs it.",
        outputType: StreamingOutputType.NON_STREAMING,
      },
    },
    async create(settings: Uint8Array): Promise<RunnerInstance> {
      return new WorkflowInstance(decode(WorkflowRunnerSettingsSchema, settings, "WorkflowRunnerSettings"), opts);
    },
  };
}

/** Runner options from the WORKFLOW_* configuration. */
export function workflowRunnerOptions(cfg: { workflow: { allowPrivateUrls: boolean; defaultTimeoutMs: number; secrets: Record<string, string> } }) {
  const secrets = cfg.workflow.secrets;
  return {
    allowPrivateUrls: cfg.workflow.allowPrivateUrls,
    defaultTimeoutMs: cfg.workflow.defaultTimeoutMs,
    // use.secrets name "apiKey" / "api-key" → WORKFLOW_SECRET_API_KEY
    secret: (name: string) => secrets[name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/[^A-Za-z0-9]/g, "_").toUpperCase()],
  };
}
