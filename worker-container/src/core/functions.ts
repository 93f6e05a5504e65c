// Runners and workers as functions (jobworkerp's "function" view): each is described with JSON Schemas derived
// from its protos, and called with JSON arguments as a DIRECT (or streamed) job through JobFront, its results
// coming back as JSON. One implementation serves FunctionService, the LLM runner's tool calling (ToolHost)
// and an MCP server front.
import { create, fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { ResponseType, ResultStatus, RetryType } from "../gen/jobworkerp/data/common_pb.js";
import type { JobResult } from "../gen/jobworkerp/data/job_result_pb.js";
import { WorkerDataSchema, type Worker, type WorkerData } from "../gen/jobworkerp/data/worker_pb.js";
import {
  FunctionSpecsSchema,
  MethodSchemaSchema,
  type FunctionResultSchema,
  type FunctionSpecs,
  type FunctionUsing,
  type WorkerOptions,
} from "../gen/jobworkerp/function/data/function_pb.js";
import type { FunctionSet } from "../gen/jobworkerp/function/data/function_set_pb.js";
import type { CreateWorkerRequest, FindFunctionByNameRequest, FunctionCallRequest } from "../gen/jobworkerp/function/service/function_pb.js";
import { JobRequestSchema } from "../gen/jobworkerp/service/job_pb.js";
import type { ToolCallOutcome, ToolHost, ToolListOptions, ToolSpec } from "../runners/llm/tools.js";
import type { MethodDefinition, RunnerDefinition } from "../runners/runner.js";
import { AppError, failedPrecondition, invalid, notFound } from "./errors.js";
import { FunctionSets } from "./function_sets.js";
import { messageSchema } from "./json_schema.js";
import type { RunnerRow } from "./ports.js";
import { canStream, resolveMethod } from "./runners.js";
import type { System } from "./system.js";

export { messageSchema } from "./json_schema.js";

/** jobworkerp-rs's FunctionService.Call default. */
const DEFAULT_CALL_TIMEOUT_MS = 300_000;
const MAX_LISTED = 10_000;
/** Retry policy of workers made by CreateWorker when none is given (jobworkerp-rs's default for them). */
const DEFAULT_RETRY = { type: RetryType.EXPONENTIAL, interval: 3000, maxInterval: 60_000, maxRetry: 3, basis: 2 };

/** A runner or a worker as a function. */
interface Fn {
  name: string;
  description: string;
  row: RunnerRow;
  /** Undefined for a dynamic runner (MCP server, plugin) that cannot be loaded right now: listed without methods. */
  def?: RunnerDefinition;
  worker?: Worker;
}

/** One method of a function, ready to run. */
interface Callable {
  fn: Fn & { def: RunnerDefinition };
  method: string;
  m: MethodDefinition;
}

export interface CallContext {
  signal: AbortSignal;
  /** Job metadata (request headers). */
  metadata?: Record<string, string>;
}

type FunctionResultInit = MessageInitShape<typeof FunctionResultSchema>;

/** What a call produces, in order: the job started, streamed chunks (when streaming), the final result. */
export type CallEvent = { kind: "started"; jobId: bigint } | { kind: "chunk"; data: Uint8Array } | { kind: "done"; result: JobResult };

// ------------------------------------------------------------------------------------------ JSON helpers

function parseObject(text: string, what: string): Record<string, JsonValue> {
  let v: unknown;
  try {
    v = JSON.parse(text.trim() || "{}");
  } catch (e) {
    throw invalid(`${what} is not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalid(`${what} must be a JSON object`);
  return v as Record<string, JsonValue>;
}

function encodeJson(desc: DescMessage, json: JsonValue, what: string): Uint8Array {
  try {
    return toBinary(desc, fromJson(desc, json));
  } catch (e) {
    throw invalid(`invalid ${what} for ${desc.typeName}: ${(e as Error).message}`);
  }
}

/** A result message as JSON text (proto field names); undecodable bytes come back as a JSON string. */
function resultJson(m: MethodDefinition, bytes: Uint8Array): string {
  try {
    return JSON.stringify(toJson(m.resultSchema, fromBinary(m.resultSchema, bytes), { useProtoFieldName: true }));
  } catch {
    return JSON.stringify(new TextDecoder().decode(bytes));
  }
}

const errorText = (r: JobResult) => new TextDecoder().decode(r.data?.output?.items ?? new Uint8Array());

// ------------------------------------------------------------------------------------------ tool names

/** OpenAI function names: [A-Za-z0-9_-]{1,64}. */
function toolName(raw: string): string {
  return raw.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || "_";
}

/** Methods a caller can use (client-streaming methods need another RPC). */
const callableMethods = (def: RunnerDefinition | undefined) => Object.entries(def?.methods ?? {}).filter(([, m]) => !m.requireClientStream);

interface Tool {
  spec: ToolSpec;
  target: Callable;
}

/** One tool per method; multi-method functions name theirs `<name>__<method>`. */
function toolsOf(fn: Fn, only?: string): Tool[] {
  const def = fn.def;
  if (!def) return [];
  const methods = callableMethods(def);
  return methods
    .filter(([method]) => only === undefined || only === "" || method === only)
    .map(([method, m]) => {
      const name = toolName(methods.length > 1 ? `${fn.name}__${method}` : fn.name);
      const args = messageSchema(m.argsSchema);
      // a runner has no worker: its settings come with each call
      const parameters =
        fn.worker || !def.settingsSchema
          ? args
          : { type: "object", properties: { settings: messageSchema(def.settingsSchema), arguments: args }, required: ["arguments"] };
      // a worker's own description says what it is for; a runner's method description adds how to call it
      const description = fn.worker ? fn.description || `worker ${fn.name} (${def.name})` : [fn.description, m.description].filter(Boolean).join(" — ");
      return { spec: { name, description, parameters }, target: { fn: fn as Callable["fn"], method, m } };
    });
}

/** First tool of each name wins (workers are listed before runners). */
function uniqueTools(tools: Tool[]): Tool[] {
  const byName = new Map<string, Tool>();
  for (const t of tools) if (!byName.has(t.spec.name)) byName.set(t.spec.name, t);
  return [...byName.values()];
}

// ------------------------------------------------------------------------------------------ the functions

export class SystemFunctions implements ToolHost {
  readonly sets: FunctionSets;

  constructor(
    private readonly sys: Pick<System, "store" | "runners" | "workers" | "front" | "ids">,
    private readonly callTimeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  ) {
    this.sets = new FunctionSets(sys);
  }

  // ---------------------------------------------------------------- lookup

  private async defOf(row: RunnerRow): Promise<RunnerDefinition | undefined> {
    const { runners } = this.sys;
    const def = runners.get(row.id);
    if (def) return def;
    // dynamic runners (MCP servers…) are loaded on demand; one that cannot be reached has no methods now
    return runners.hasLoader(row.runnerType) ? runners.load(row).catch(() => undefined) : undefined;
  }

  private async runnerFn(row: RunnerRow): Promise<Fn> {
    return { name: row.name, description: row.description, row, def: await this.defOf(row) };
  }

  private async workerFn(w: Worker, rows?: Map<bigint, RunnerRow>): Promise<Fn | undefined> {
    const runnerId = w.data!.runnerId!.value;
    const row = rows?.get(runnerId) ?? (await this.sys.store.findRunner(runnerId));
    if (!row) return undefined; // its runner was deleted
    return { name: w.data!.name, description: w.data!.description, row, def: await this.defOf(row), worker: w };
  }

  private async runnerRows(): Promise<RunnerRow[]> {
    return this.sys.store.findRunners({ ascending: true, limit: MAX_LISTED });
  }

  /** Workers first, then runners (both by id). Periodic workers cannot answer a call: tools leave them out. */
  private async functions(opts: { runners: boolean; workers: boolean; callableOnly?: boolean }): Promise<Fn[]> {
    const rows = await this.runnerRows();
    const out: Fn[] = [];
    if (opts.workers) {
      const byId = new Map(rows.map((r) => [r.id, r]));
      const workers = await this.sys.store.findWorkers({ isPeriodic: opts.callableOnly ? false : undefined, limit: MAX_LISTED, ascending: true });
      for (const w of workers) {
        const fn = await this.workerFn(w, byId);
        if (fn) out.push(fn);
      }
    }
    if (opts.runners) for (const row of rows) out.push(await this.runnerFn(row));
    return out;
  }

  private async byName(kind: "runner" | "worker", name: string): Promise<Fn | undefined> {
    if (kind === "worker") {
      const w = await this.sys.store.findWorkerByName(name);
      return w && this.workerFn(w);
    }
    const row = await this.sys.store.findRunnerByName(name);
    return row && this.runnerFn(row);
  }

  private async byId(ref: FunctionUsing["functionId"]): Promise<Fn | undefined> {
    const id = ref?.id;
    if (id?.case === "workerId") {
      const w = await this.sys.store.findWorker(id.value.value);
      return w && this.workerFn(w);
    }
    if (id?.case === "runnerId") {
      const row = await this.sys.store.findRunner(id.value.value);
      return row && this.runnerFn(row);
    }
    throw invalid("function_id must name a runner_id or a worker_id");
  }

  /** The set's targets that still exist, in the set's order. */
  private async setTargets(set: FunctionSet): Promise<{ fn: Fn; using?: string }[]> {
    const out: { fn: Fn; using?: string }[] = [];
    for (const t of set.data!.targets) {
      const fn = await this.byId(t.functionId).catch(() => undefined);
      if (fn) out.push({ fn, using: t.using || undefined });
    }
    return out;
  }

  // ---------------------------------------------------------------- FunctionSpecs

  /** A function's specs; with `using`, only that method (none when it has no such method). */
  private specsOf(fn: Fn, using?: string): FunctionSpecs {
    const schemas = Object.fromEntries(
      callableMethods(fn.def)
        .filter(([name]) => !using || name === using)
        .map(([name, m]) => [
          name,
          create(MethodSchemaSchema, {
            description: m.description,
            argumentsSchema: JSON.stringify(messageSchema(m.argsSchema)),
            resultSchema: JSON.stringify(messageSchema(m.resultSchema)),
            outputType: m.outputType,
          }),
        ]),
    );
    const settings = !fn.worker && fn.def?.settingsSchema ? JSON.stringify(messageSchema(fn.def.settingsSchema)) : "";
    return create(FunctionSpecsSchema, {
      runnerType: fn.row.runnerType,
      runnerId: { value: fn.row.id },
      workerId: fn.worker?.id,
      name: fn.name,
      description: fn.description,
      settingsSchema: settings,
      methods: { schemas },
    });
  }

  async listSpecs(opts: { excludeRunner: boolean; excludeWorker: boolean }): Promise<FunctionSpecs[]> {
    const fns = await this.functions({ runners: !opts.excludeRunner, workers: !opts.excludeWorker });
    return fns.map((fn) => this.specsOf(fn));
  }

  async specsOfSet(set: FunctionSet): Promise<FunctionSpecs[]> {
    return (await this.setTargets(set)).map(({ fn, using }) => this.specsOf(fn, using));
  }

  /** The specs of a function set's targets; NOT_FOUND for an unknown set. */
  async listSpecsBySet(name: string): Promise<FunctionSpecs[]> {
    return this.specsOfSet(await this.sets.byName(name));
  }

  async findSpecs(using: FunctionUsing): Promise<FunctionSpecs | undefined> {
    const fn = await this.byId(using.functionId);
    if (!fn) return undefined;
    if (using.using && fn.def && !fn.def.methods[using.using]) return undefined;
    return this.specsOf(fn, using.using);
  }

  async findSpecsByName(req: FindFunctionByNameRequest): Promise<FunctionSpecs | undefined> {
    if (!req.name.case) throw invalid("runner_name or worker_name is required");
    const fn = await this.byName(req.name.case === "runnerName" ? "runner" : "worker", req.name.value);
    return fn && this.specsOf(fn);
  }

  // ---------------------------------------------------------------- running

  /** A function's method: `name` is the function, or `<function>__<method>` (the tool name of a multi-method one). */
  private async callable(kind: "runner" | "worker", name: string): Promise<Callable> {
    let fn = await this.byName(kind, name);
    let using: string | undefined;
    const cut = name.lastIndexOf("__");
    if (!fn && cut > 0) {
      fn = await this.byName(kind, name.slice(0, cut));
      using = name.slice(cut + 2);
    }
    if (!fn) throw notFound(`no ${kind} named '${name}'`);
    if (!fn.def) throw failedPrecondition(`runner ${fn.row.name} of '${fn.name}' cannot be loaded now`);
    const [method, m] = resolveMethod(fn.def, using);
    return { fn: fn as Callable["fn"], method, m };
  }

  /**
   * Runs one method as a job: a worker directly, a runner through a temporary DIRECT worker with the given
   * settings. A caller that stops early (error, cancellation, not reading on) cancels the job.
   */
  private async *execute(
    target: Callable,
    args: Uint8Array,
    opts: CallContext & { settings?: Uint8Array; workerOptions?: WorkerOptions; uniqKey?: string; timeoutMs?: number; streaming?: boolean },
  ): AsyncGenerator<CallEvent> {
    const { fn, method, m } = target;
    const stream = !!opts.streaming && canStream(m);
    const timeoutMs = opts.timeoutMs ?? this.callTimeoutMs;
    let workerId = fn.worker?.id?.value;
    let temporary = false;
    let jobId: bigint | undefined;
    let finished = false;
    let coalesced = false;
    try {
      if (workerId === undefined) {
        workerId = await this.sys.workers.create(temporaryWorker(fn.def, this.sys.ids.next(), opts.settings ?? new Uint8Array(), opts.workerOptions));
        temporary = true;
      }
      const req = create(JobRequestSchema, {
        worker: { case: "workerId", value: { value: workerId } },
        args,
        using: method,
        uniqKey: opts.uniqKey,
        timeout: BigInt(Math.trunc(timeoutMs)),
        overrides: { responseType: ResponseType.DIRECT },
      });
      const enq = await this.sys.front.enqueue(req, opts.metadata ?? {}, stream ? "stream" : "unary", opts.signal);
      jobId = enq.job.id!.value;
      coalesced = enq.coalesced === true;
      yield { kind: "started", jobId };
      if (enq.chunks) {
        for await (const item of enq.chunks) {
          if (item.item.case === "data") yield { kind: "chunk", data: item.item.value };
          if (item.item.case === "end") break;
        }
      }
      const result = await enq.result;
      if (!result) {
        if (opts.signal.aborted) throw new AppError("CANCELLED", `call of '${fn.name}' cancelled (job ${jobId})`);
        throw new AppError("DEADLINE_EXCEEDED", `job ${jobId} of '${fn.name}' did not finish within ${timeoutMs} ms`);
      }
      finished = true;
      yield { kind: "done", result };
    } finally {
      // a call coalesced onto another caller's job (dedup) must not cancel it
      if (jobId !== undefined && !finished && !coalesced) await this.sys.front.delete(jobId).catch(() => undefined);
      if (temporary) await this.sys.workers.delete(workerId!).catch(() => undefined);
    }
  }

  /** FunctionService.Call: JSON args in, FunctionResult messages out (chunks when streaming, then the final one). */
  async *callFunction(req: FunctionCallRequest, ctx: CallContext): AsyncGenerator<FunctionResultInit> {
    if (!req.name.case) throw invalid("runner_name or worker_name is required");
    const kind = req.name.case === "runnerName" ? "runner" : "worker";
    const target = await this.callable(kind, req.name.value);
    const { fn, m } = target;
    const json = parseObject(req.argsJson, "args_json");
    const args = m.acceptsJsonArgs ? new TextEncoder().encode(JSON.stringify(json)) : encodeJson(m.argsSchema, json, "args_json");
    let settings: Uint8Array | undefined;
    if (kind === "runner" && fn.def.settingsSchema) {
      settings = encodeJson(fn.def.settingsSchema, parseObject(req.runnerParameters?.settingsJson ?? "", "settings_json"), "settings_json");
    }
    const o = req.options;
    if (o?.timeoutMs !== undefined && o.timeoutMs <= 0n) throw invalid("options.timeout_ms must be > 0");
    let started = 0n;
    for await (const ev of this.execute(target, args, {
      signal: ctx.signal,
      metadata: { ...ctx.metadata, ...o?.metadata },
      settings,
      workerOptions: kind === "runner" ? req.runnerParameters?.workerOptions : undefined,
      uniqKey: req.uniqKey,
      timeoutMs: o?.timeoutMs !== undefined ? Number(o.timeoutMs) : undefined,
      streaming: o?.streaming,
    })) {
      if (ev.kind === "started") started = ev.jobId;
      else if (ev.kind === "chunk") yield { output: resultJson(m, ev.data) };
      else yield finalResult(ev.result, started, m, !!o?.streaming && canStream(m));
    }
  }

  /** FunctionService.CreateWorker / UpsertWorker: a worker from a runner, settings in JSON. */
  async createWorker(req: CreateWorkerRequest, upsert: boolean): Promise<{ workerId: bigint; workerName: string }> {
    const r = req.runner;
    if (!r.case) throw invalid("runner_name or runner_id is required");
    const row = r.case === "runnerName" ? await this.sys.store.findRunnerByName(r.value) : await this.sys.store.findRunner(r.value.value);
    if (!row) throw notFound(`runner ${r.case === "runnerName" ? `'${r.value}'` : r.value.value} not found`);
    const def = await this.defOf(row);
    if (!def) throw failedPrecondition(`runner ${row.name} cannot be loaded now`);
    const settings =
      def.settingsSchema && req.settingsJson?.trim()
        ? encodeJson(def.settingsSchema, parseObject(req.settingsJson, "settings_json"), "settings_json")
        : new Uint8Array();
    const o = req.workerOptions;
    const data = create(WorkerDataSchema, {
      name: req.name,
      description: req.description ?? "",
      runnerId: { value: row.id },
      runnerSettings: settings,
      retryPolicy: o?.retryPolicy ?? DEFAULT_RETRY,
      channel: o?.channel || undefined,
      queueType: o?.queueType,
      responseType: o?.responseType ?? ResponseType.DIRECT,
      storeSuccess: o?.storeSuccess ?? false,
      storeFailure: o?.storeFailure ?? false,
      useStatic: o?.useStatic ?? false,
      broadcastResults: o?.broadcastResults ?? false,
    });
    const id = upsert ? await this.sys.workers.upsertByName(data) : await this.sys.workers.create(data);
    return { workerId: id, workerName: data.name };
  }

  // ---------------------------------------------------------------- tools (LLM runner, MCP server)

  private async tools(opts: ToolListOptions): Promise<Tool[]> {
    if (opts.functionSetName) {
      const targets = await this.setTargets(await this.sets.byName(opts.functionSetName));
      // a periodic worker cannot answer a call
      return uniqueTools(targets.filter(({ fn }) => !(fn.worker && fn.worker.data!.periodicInterval > 0)).flatMap(({ fn, using }) => toolsOf(fn, using)));
    }
    const fns = await this.functions({ runners: opts.useRunners, workers: opts.useWorkers, callableOnly: true });
    return uniqueTools(fns.flatMap((fn) => toolsOf(fn)));
  }

  /**
   * Tools (name, description, JSON Schema of the arguments): a function set's targets when `functionSetName` is
   * given (NOT_FOUND when there is no such set), else the workers and/or runners.
   */
  async list(opts: ToolListOptions): Promise<ToolSpec[]> {
    return (await this.tools(opts)).map((t) => t.spec);
  }

  /**
   * Calls a tool by its listed name with JSON arguments (a runner with settings takes {settings, arguments}) and
   * resolves with its result as JSON text; rejects with an Error saying why it failed. `scope` restricts the
   * names to those `list(scope)` offers (default: every worker and runner).
   */
  async call(
    name: string,
    argsJson: string,
    signal: AbortSignal,
    onStarted?: (jobId: bigint) => void,
    scope: ToolListOptions = { useWorkers: true, useRunners: true },
  ): Promise<ToolCallOutcome> {
    const tool = (await this.tools(scope)).find((t) => t.spec.name === name);
    if (!tool) throw notFound(`no tool named '${name}'`);
    const { fn, m } = tool.target;
    const json = parseObject(argsJson, "arguments");
    const runnerSettings = !fn.worker && fn.def.settingsSchema;
    const argsJsonValue = (runnerSettings ? json.arguments : json) ?? {};
    const args = m.acceptsJsonArgs ? new TextEncoder().encode(JSON.stringify(argsJsonValue)) : encodeJson(m.argsSchema, argsJsonValue, "arguments");
    const settings = runnerSettings ? encodeJson(runnerSettings, json.settings ?? {}, "settings") : undefined;
    let jobId: bigint | undefined;
    for await (const ev of this.execute(tool.target, args, { signal, settings })) {
      if (ev.kind === "started") {
        jobId = ev.jobId;
        onStarted?.(jobId);
      } else if (ev.kind === "done") {
        const d = ev.result.data!;
        if (d.status !== ResultStatus.SUCCESS) throw new Error(`${ResultStatus[d.status] ?? d.status}: ${errorText(ev.result)}`);
        return { result: resultJson(m, d.output?.items ?? new Uint8Array()), jobId };
      }
    }
    throw new Error(`tool '${name}' ended without a result`);
  }
}

/** A DIRECT worker for one call of a runner (deleted after the call). */
function temporaryWorker(def: RunnerDefinition, seq: bigint, settings: Uint8Array, o: WorkerOptions | undefined): WorkerData {
  return create(WorkerDataSchema, {
    name: `__function_call_${def.name}_${seq}`,
    description: "temporary worker of a function call",
    runnerId: { value: def.id },
    runnerSettings: settings,
    responseType: ResponseType.DIRECT,
    retryPolicy: o?.retryPolicy ?? { type: RetryType.NONE },
    channel: o?.channel || undefined,
    storeSuccess: o?.storeSuccess ?? false,
    storeFailure: o?.storeFailure ?? false,
    broadcastResults: o?.broadcastResults ?? false,
  });
}

/** The last FunctionResult of a call: the result (unless already streamed as chunks), status and timing. */
function finalResult(r: JobResult, jobId: bigint, m: MethodDefinition, streamed: boolean): FunctionResultInit {
  const d = r.data!;
  const ok = d.status === ResultStatus.SUCCESS;
  const lastInfo = {
    jobId: String(d.jobId?.value ?? jobId),
    startedAt: d.startTime,
    completedAt: d.endTime,
    executionTimeMs: d.endTime >= d.startTime ? d.endTime - d.startTime : 0n,
    metadata: r.metadata,
  };
  if (!ok) return { output: "", status: d.status, errorMessage: errorText(r), errorCode: ResultStatus[d.status], lastInfo };
  return { output: streamed ? "" : resultJson(m, d.output?.items ?? new Uint8Array()), status: d.status, lastInfo };
}
