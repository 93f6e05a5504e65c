// The workflow engine: runs a validated definition task by task with the spec's data flow
// (if → input.schema/from → task → output.as/schema → export.as → then), errors in the spec's shape with the
// task's JSON pointer as `instance`, timeouts and cancellation.
import { Ajv2020 } from "ajv/dist/2020.js";
import { randomUUID } from "node:crypto";
import { executionKey, type CheckpointData, type CheckpointStore } from "./checkpoint.js";
import { durationMs, sleep } from "./duration.js";
import { WorkflowError, asWorkflowError, errorType, type WorkflowErrorShape } from "./errors.js";
import { ensureJq, evalExpr, evalTemplate, isJq, isLiquid, truthy, type Vars } from "./expressions.js";
import type { JobHost } from "./host.js";
import { callHttp } from "./http_call.js";
import { runRunTask } from "./run_task.js";
import { taskType, type Def, type TaskItem } from "./validate.js";

export type WorkflowStatus = "Completed" | "Faulted" | "Cancelled" | "Waiting";

/** Progress events, named and shaped like jobworkerp.data.WorkflowEvent's variants (proto field names). */
export type WorkflowEvent =
  | { task_started: { task_type: string; task_name: string; position: string } }
  | { task_completed: { task_type: string; task_name: string; position: string; skipped?: boolean } }
  | { job_started: { job_id: string; runner_name: string; worker_name?: string; position: string } }
  | { job_completed: { job_id: string; job_result_id?: string; position: string } }
  | { streaming_job_started: { job_id: string; runner_name: string; worker_name?: string; position: string } }
  | { streaming_job_completed: { job_id: string; job_result_id?: string; position: string } }
  | { streaming_data: { job_id: string; data: Uint8Array } }
  | { for_item_failed: { task_name: string; position: string; index: number; error_payload_json: string } };

export interface RunOptions {
  input?: unknown;
  /** Context variables ($name in expressions). */
  context?: Record<string, unknown>;
  host?: JobHost;
  signal?: AbortSignal;
  onEvent?(e: WorkflowEvent): void;
  /** Values of the secrets the workflow declares under use.secrets. */
  secret?(name: string): string | undefined;
  /** Timeout of the workflow and of each task without one (WORKFLOW_TASK_DEFAULT_TIMEOUT_SEC). */
  defaultTimeoutMs?: number;
  /** Loads a nested workflow's definition (run.workflow). */
  loadNested?(src: { data?: string | object; url?: string }): Promise<Def>;
  id?: string;
  /** jobworkerp execution id: with `checkpointing.enabled`, `checkpoint: true` tasks save their state under it. */
  executionId?: string;
  checkpoints?: CheckpointStore;
  /** Continue after the checkpointed top-level task at `position` (its saved state, or `data` given instead). */
  resume?: { position: string; data?: CheckpointData };
}

export interface Outcome {
  id: string;
  status: WorkflowStatus;
  output: unknown;
  /** Pointer of the last task that ran. */
  position: string;
  error?: WorkflowErrorShape;
}

type Flow = "end" | "wait" | undefined;
interface ListResult {
  output: unknown;
  flow?: Flow;
}
interface TaskResult {
  output: unknown;
  /** The task's input after input.from (saved in checkpoints). */
  input?: unknown;
  flow?: Flow;
  /** A directive chosen by the task itself (switch). */
  then?: string;
}

/** Context variables: each `for` item / `catch.as` adds a scope whose names shadow the outer ones. */
type Scope = Record<string, unknown>;

const ajv = new Ajv2020({ allErrors: true, strict: false });
const schemaCache = new WeakMap<object, ReturnType<typeof ajv.compile>>();
const DEFAULT_TIMEOUT_MS = 3_600_000;

function startedAt(ms: number) {
  return { iso8601: new Date(ms).toISOString(), epoch: { seconds: Math.floor(ms / 1000), milliseconds: ms } };
}

export class WorkflowRun {
  readonly id: string;
  private readonly started = Date.now();
  /** The spec's $context (replaced by export.as). */
  private context: unknown = {};
  /** jobworkerp context variables (workflow_context, set). */
  readonly vars: Record<string, unknown>;
  private position = "/do";
  private readonly secrets: Record<string, string> = {};
  private workflowInput: unknown = null;

  constructor(
    readonly def: Def,
    private readonly opts: RunOptions = {},
  ) {
    this.id = opts.id ?? randomUUID();
    this.vars = { ...(opts.context ?? {}) };
    for (const name of (def.use?.secrets as string[] | undefined) ?? []) {
      const v = opts.secret?.(name);
      if (v !== undefined) this.secrets[name] = v;
    }
  }

  private emit(e: WorkflowEvent) {
    this.opts.onEvent?.(e);
  }

  /** The variables of an expression evaluated in a task. */
  private vars$(scope: Scope, extra: Vars): Vars {
    return {
      ...this.vars,
      ...scope,
      context: this.context,
      workflow: { id: this.id, definition: this.def, input: this.workflowInput, startedAt: startedAt(this.started) },
      runtime: { name: "jobworkerp-ts", version: "1.0.0", metadata: this.def.document?.metadata ?? {} },
      secrets: this.secrets,
      ...extra,
    };
  }

  async run(): Promise<Outcome> {
    await ensureJq();
    const signal = this.opts.signal ?? new AbortController().signal;
    const wfTimeout = this.timeoutOf(this.def.timeout) ?? this.opts.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    try {
      const out = await withTimeout(wfTimeout, signal, "/", async (sig) => {
        let input: unknown;
        let r: ListResult;
        if (this.opts.resume) {
          const from = await this.restore(this.opts.resume);
          input = this.workflowInput;
          r = from.index < 0 ? { output: from.output } : await this.runList(this.def.do as TaskItem[], from.output, "/do", {}, sig, from.index);
        } else {
          input = this.opts.input ?? {};
          this.checkSchema(this.def.input?.schema, input, "/input", "input");
          input = this.applyDefaults(this.def.input?.schema, input);
          this.workflowInput = input;
          if (this.def.input?.from !== undefined) input = evalExpr(this.def.input.from, input, this.vars$({}, { input }));
          r = await this.runList(this.def.do as TaskItem[], input, "/do", {}, sig);
        }
        let output = r.output;
        if (this.def.output?.as !== undefined) output = evalExpr(this.def.output.as, output, this.vars$({}, { input, output }));
        this.checkSchema(this.def.output?.schema, output, "/output", "output");
        return { output, flow: r.flow };
      });
      return { id: this.id, status: out.flow === "wait" ? "Waiting" : "Completed", output: out.output, position: this.position };
    } catch (e) {
      if (signal.aborted && !(e instanceof WorkflowError && e.shape.type === errorType("timeout"))) {
        return { id: this.id, status: "Cancelled", output: null, position: this.position, error: { type: errorType("runtime"), status: 500, title: "cancelled", instance: this.position } };
      }
      const err = asWorkflowError(e, this.position).toJSON();
      return { id: this.id, status: "Faulted", output: err, position: this.position, error: err };
    }
  }

  private get checkpointKey(): string | undefined {
    if (!this.def.checkpointing?.enabled || !this.opts.executionId || !this.opts.checkpoints) return undefined;
    return executionKey(String(this.def.document?.name ?? ""), this.opts.executionId);
  }

  /** Saves the state after a completed top-level task (checkpoint: true, or a `then: wait` pause). */
  private async saveCheckpoint(at: string, r: TaskResult, flow: string): Promise<void> {
    const key = this.checkpointKey;
    if (!key) return;
    const data: CheckpointData = {
      workflow: { name: String(this.def.document?.name ?? ""), input: JSON.stringify(this.workflowInput ?? null), context_variables: JSON.stringify(this.vars) },
      task: { input: JSON.stringify(r.input ?? null), output: JSON.stringify(r.output ?? null), context_variables: JSON.stringify({ context: this.context }), flow_directive: flow },
    };
    try {
      await this.opts.checkpoints!.save(key, at, data);
    } catch (e) {
      throw WorkflowError.of("runtime", "cannot save checkpoint", (e as Error).message, at);
    }
  }

  /**
   * Restores a checkpoint: workflow input, context variables and $context come back; the result is where the
   * root list goes on (index -1: nothing left) and with which input.
   */
  private async restore(resume: { position: string; data?: CheckpointData }): Promise<{ index: number; output: unknown }> {
    const at = resume.position;
    const fail = (detail: string) => WorkflowError.of("configuration", "cannot resume", detail, at);
    if (!this.opts.executionId) throw fail("resuming needs an execution_id");
    const key = executionKey(String(this.def.document?.name ?? ""), this.opts.executionId);
    let data = resume.data;
    if (data) await this.opts.checkpoints?.save(key, at, data);
    else data = await this.opts.checkpoints?.load(key, at);
    if (!data) throw fail(`no checkpoint at '${at}' for execution '${this.opts.executionId}'`);
    const list = this.def.do as TaskItem[];
    const names = list.map((item) => Object.keys(item)[0]);
    const m = /^\/do\/(\d+)\/(.+)$/.exec(at);
    const i = m ? Number(m[1]) : -1;
    if (!m || names[i] === undefined || names[i].replace(/~/g, "~0").replace(/\//g, "~1") !== m[2]) {
      throw fail(`'${at}' is not the position of a top-level task of this workflow`);
    }
    const parse = (text: string | undefined, what: string): unknown => {
      try {
        return text ? JSON.parse(text) : null;
      } catch (e) {
        throw fail(`checkpoint ${what} is not JSON: ${(e as Error).message}`);
      }
    };
    this.workflowInput = parse(data.workflow?.input, "workflow.input");
    Object.assign(this.vars, (parse(data.workflow?.context_variables, "workflow.context_variables") as object | null) ?? {});
    const taskVars = parse(data.task?.context_variables, "task.context_variables") as { context?: unknown } | null;
    if (taskVars && "context" in taskVars) this.context = taskVars.context;
    const output = parse(data.task?.output, "task.output");
    for (let j = 0; j <= i; j++) this.emit({ task_completed: { task_type: taskType(list[j][names[j]]) ?? "unknown", task_name: names[j], position: `/do/${j}/${names[j]}`, skipped: true } });
    this.position = at;
    const flow = data.task?.flow_directive || "continue";
    if (flow === "continue" || flow === "wait") return { index: i + 1 < list.length ? i + 1 : -1, output };
    if (flow === "exit" || flow === "end") return { index: -1, output };
    const j = names.indexOf(flow);
    if (j < 0) throw fail(`the checkpoint's flow directive names no task '${flow}'`);
    return { index: j, output };
  }

  private timeoutOf(t: unknown): number | undefined {
    if (t === undefined) return undefined;
    const ref = typeof t === "string" ? this.def.use?.timeouts?.[t] : t;
    if (ref === undefined) throw WorkflowError.of("configuration", "unknown timeout", `no timeout named '${t}' under use.timeouts`);
    return durationMs((ref as Def).after);
  }

  private checkSchema(schema: Def | undefined, value: unknown, at: string, what: string): void {
    const doc = schema?.document;
    if (!doc || typeof doc !== "object") return;
    let validate = schemaCache.get(doc);
    if (!validate) {
      try {
        validate = ajv.compile(doc);
      } catch (e) {
        throw WorkflowError.of("configuration", `invalid ${what} schema`, (e as Error).message, at);
      }
      schemaCache.set(doc, validate);
    }
    if (!validate(value)) {
      const detail = (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
      throw WorkflowError.of("validation", `${what} does not match its schema`, detail, at);
    }
  }

  /** The workflow input schema's `default`s for missing top-level properties (as jobworkerp does). */
  private applyDefaults(schema: Def | undefined, input: unknown): unknown {
    const props = schema?.document?.properties;
    if (!props || !input || typeof input !== "object" || Array.isArray(input)) return input;
    const out = { ...(input as Record<string, unknown>) };
    for (const [k, p] of Object.entries(props as Record<string, Def>)) if (!(k in out) && p && "default" in p) out[k] = p.default;
    return out;
  }

  async runList(list: TaskItem[], input: unknown, at: string, scope: Scope, signal: AbortSignal, startAt = 0): Promise<ListResult> {
    let current = input;
    let i = startAt;
    const names = list.map((item) => Object.keys(item)[0]);
    while (i < list.length) {
      if (signal.aborted) throw signal.reason;
      const name = names[i];
      const task = list[i][name];
      const pointer = `${at}/${i}/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`;
      const r = await this.runTask(name, task, current, pointer, scope, signal);
      current = r.output;
      if (at === "/do" && (task.checkpoint === true || r.then === "wait")) await this.saveCheckpoint(pointer, r, r.flow ?? r.then ?? "continue");
      if (r.flow) return { output: current, flow: r.flow };
      const directive = r.then;
      if (directive === undefined || directive === "continue") i++;
      else if (directive === "exit") return { output: current };
      else if (directive === "end") return { output: current, flow: "end" };
      else if (directive === "wait") return { output: current, flow: "wait" };
      else {
        const j = names.indexOf(directive);
        if (j < 0) throw WorkflowError.of("configuration", "unknown task", `'then' names no task '${directive}' in this list`, pointer);
        i = j;
      }
    }
    return { output: current };
  }

  async runTask(name: string, task: Def, rawInput: unknown, at: string, scope: Scope, signal: AbortSignal): Promise<TaskResult> {
    this.position = at;
    const type = taskType(task) ?? "unknown";
    const taskStarted = Date.now();
    const taskVar = (input: unknown, output: unknown) => ({ name, reference: at, definition: task, input, output, startedAt: startedAt(taskStarted) });
    try {
      if (task.if !== undefined) {
        const cond = typeof task.if === "boolean" ? task.if : truthy(evalExpr(task.if, rawInput, this.vars$(scope, { input: rawInput, task: taskVar(rawInput, null) })));
        if (!cond) {
          this.emit({ task_completed: { task_type: type, task_name: name, position: at, skipped: true } });
          return { output: rawInput, input: rawInput };
        }
      }
      this.emit({ task_started: { task_type: type, task_name: name, position: at } });
      this.checkSchema(task.input?.schema, rawInput, `${at}/input`, "input");
      let input = rawInput;
      if (task.input?.from !== undefined) input = evalExpr(task.input.from, rawInput, this.vars$(scope, { input: rawInput, task: taskVar(rawInput, null) }));
      const timeoutMs = this.timeoutOf(task.timeout);
      const exec = (sig: AbortSignal) => this.execute(type, name, task, input, at, scope, sig, taskVar(input, null));
      const r = timeoutMs === undefined ? await exec(signal) : await withTimeout(timeoutMs, signal, at, exec);
      let output = r.output;
      if (task.output?.as !== undefined) output = evalExpr(task.output.as, output, this.vars$(scope, { input, output, task: taskVar(input, output) }));
      this.checkSchema(task.output?.schema, output, `${at}/output`, "output");
      if (task.export?.as !== undefined) {
        const ctx = evalExpr(task.export.as, output, this.vars$(scope, { input, output, task: taskVar(input, output) }));
        this.checkSchema(task.export?.schema, ctx, `${at}/export`, "context");
        this.context = ctx;
      }
      let then: string | undefined = r.then ?? task.then;
      if (then !== undefined && (isJq(then) || isLiquid(then))) {
        const v = evalTemplate(then, output, this.vars$(scope, { input, output }));
        then = typeof v === "string" ? v : then;
      }
      this.position = at;
      this.emit({ task_completed: { task_type: type, task_name: name, position: at } });
      return { output, input, flow: r.flow, then };
    } catch (e) {
      if (signal.aborted && !(e instanceof WorkflowError)) throw e;
      throw asWorkflowError(e, at);
    }
  }

  private async execute(type: string, name: string, task: Def, input: unknown, at: string, scope: Scope, signal: AbortSignal, taskVar: unknown): Promise<TaskResult> {
    const vars = () => this.vars$(scope, { input, task: taskVar });
    switch (type) {
      case "do":
        return this.runList(task.do, input, `${at}/do`, scope, signal);
      case "set": {
        const value = typeof task.set === "string" ? evalExpr(task.set, input, vars()) : evalTemplate(task.set, input, vars());
        // jobworkerp: what `set` produces is also readable later as $key
        if (value && typeof value === "object" && !Array.isArray(value)) Object.assign(this.vars, value);
        return { output: value };
      }
      case "switch":
        return this.runSwitch(task, input, vars());
      case "for":
        return this.runFor(name, task, input, at, scope, signal);
      case "fork":
        return this.runFork(task, input, at, scope, signal);
      case "try":
        return this.runTry(task, input, at, scope, signal);
      case "raise":
        throw this.raised(task, input, at, vars());
      case "wait": {
        const ms = durationMs(task.wait);
        if (ms === undefined) throw WorkflowError.of("configuration", "bad duration", JSON.stringify(task.wait), at);
        await sleep(ms, signal);
        return { output: input };
      }
      case "call":
        if (task.call !== "http") throw WorkflowError.of("configuration", "unsupported call", `call '${task.call}' is not supported (http)`, at);
        return { output: await callHttp(task.with, input, { ...(vars() as Vars), secrets: this.secrets }, this.def.use?.authentications ?? {}, signal, at) };
      case "run": {
        const output = await runRunTask(task, input, vars(), {
          host: this.opts.host,
          signal,
          at,
          emit: (e) => this.emit(e),
          runNested: (def, nestedInput, sig) => this.runNested(def, nestedInput, sig),
          loadNested: this.opts.loadNested,
        });
        return { output };
      }
      default:
        throw WorkflowError.of("configuration", "unknown task type", `task '${name}' has no known type`, at);
    }
  }

  private runSwitch(task: Def, input: unknown, vars: Vars): TaskResult {
    let fallback: string | undefined;
    for (const c of task.switch as Record<string, Def>[]) {
      const [, body] = Object.entries(c)[0];
      if (body.when === undefined) {
        fallback ??= body.then;
        continue;
      }
      const hit = typeof body.when === "boolean" ? body.when : truthy(evalExpr(body.when, input, vars));
      if (hit) return { output: input, then: body.then };
    }
    // spec: no match and no default → the switch task's own `then`
    return { output: input, then: fallback };
  }

  private async runFor(name: string, task: Def, input: unknown, at: string, scope: Scope, signal: AbortSignal): Promise<TaskResult> {
    const each = task.for.each ?? "item";
    const atName = task.for.at ?? "index";
    const items = evalExpr(task.for.in, input, this.vars$(scope, { input }));
    const list: unknown[] = Array.isArray(items) ? items : items === null ? [] : [items];
    const onError = task.onError ?? "break";
    const failed = (i: number, e: unknown) =>
      this.emit({ for_item_failed: { task_name: name, position: at, index: i, error_payload_json: JSON.stringify(asWorkflowError(e, at).toJSON()) } });

    if (task.inParallel) {
      const outputs = await Promise.all(
        list.map(async (item, i) => {
          const s = { ...scope, [each]: item, [atName]: i };
          if (task.while !== undefined && !truthy(evalExpr(task.while, input, this.vars$(s, { input })))) return null;
          try {
            return (await this.runList(task.do, input, `${at}/do`, s, signal)).output;
          } catch (e) {
            if (onError !== "continue" || signal.aborted) throw e;
            failed(i, e);
            return null;
          }
        }),
      );
      return { output: outputs };
    }
    // spec: iterations chain (each one's input is the previous one's output); `while` false stops the loop
    let current = input;
    for (let i = 0; i < list.length; i++) {
      const s = { ...scope, [each]: list[i], [atName]: i };
      if (task.while !== undefined && !truthy(evalExpr(task.while, current, this.vars$(s, { input: current })))) break;
      try {
        const r = await this.runList(task.do, current, `${at}/do`, s, signal);
        current = r.output;
        if (r.flow) return { output: current, flow: r.flow };
      } catch (e) {
        if (onError !== "continue" || signal.aborted) throw e;
        failed(i, e);
      }
    }
    return { output: current };
  }

  private async runFork(task: Def, input: unknown, at: string, scope: Scope, signal: AbortSignal): Promise<TaskResult> {
    const branches = task.fork.branches as TaskItem[];
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const runBranch = (item: TaskItem, i: number) => {
      const [name] = Object.keys(item);
      return this.runTask(name, item[name], input, `${at}/fork/branches/${i}/${name}`, { ...scope }, ctrl.signal);
    };
    try {
      if (task.fork.compete) {
        const winner = await Promise.any(branches.map(runBranch)).catch((e: AggregateError) => {
          throw e.errors?.[0] ?? e;
        });
        ctrl.abort(new Error("another branch won"));
        return { output: winner.output };
      }
      const all = await Promise.all(branches.map(runBranch)).catch((e) => {
        ctrl.abort(e);
        throw e;
      });
      return { output: all.map((r) => r.output) };
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  private async runTry(task: Def, input: unknown, at: string, scope: Scope, signal: AbortSignal): Promise<TaskResult> {
    const c = (task.catch ?? {}) as Def;
    const retry = typeof c.retry === "string" ? this.def.use?.retries?.[c.retry] : c.retry;
    const t0 = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runList(task.try, input, `${at}/try`, scope, signal);
      } catch (e) {
        if (signal.aborted) throw e;
        const err = asWorkflowError(e, at);
        const shape = err.toJSON();
        if (!matchesFilter(c.errors?.with, shape)) throw err;
        const s = { ...scope, [c.as ?? "error"]: shape };
        const vars = this.vars$(s, { input });
        if (c.when !== undefined && !truthy(evalExpr(c.when, shape, vars))) throw err;
        if (c.exceptWhen !== undefined && truthy(evalExpr(c.exceptWhen, shape, vars))) throw err;
        if (retry) {
          const again = this.retryDelay(retry, attempt, Date.now() - t0, shape, vars);
          if (again !== undefined) {
            await sleep(again, signal);
            continue;
          }
          // retries exhausted: the error stands unless catch.do handles it
          if (!Array.isArray(c.do)) throw err;
        }
        if (Array.isArray(c.do)) return this.runList(c.do, input, `${at}/catch/do`, s, signal);
        return { output: input };
      }
    }
  }

  /** Delay before the next attempt, or undefined when the retry policy says stop. */
  private retryDelay(retry: Def, attempt: number, elapsedMs: number, err: WorkflowErrorShape, vars: Vars): number | undefined {
    if (retry.when !== undefined && !truthy(evalExpr(retry.when, err, vars))) return undefined;
    if (retry.exceptWhen !== undefined && truthy(evalExpr(retry.exceptWhen, err, vars))) return undefined;
    const count = retry.limit?.attempt?.count;
    if (typeof count === "number" && attempt > count) return undefined;
    const total = durationMs(retry.limit?.duration);
    if (total !== undefined && elapsedMs >= total) return undefined;
    const delay = durationMs(retry.delay) ?? 0;
    const b = retry.backoff ?? {};
    let ms = delay;
    if (b.linear) ms = delay * attempt;
    else if (b.exponential) ms = delay * 2 ** (attempt - 1);
    if (retry.jitter) {
      const from = durationMs(retry.jitter.from) ?? 0;
      const to = durationMs(retry.jitter.to) ?? from;
      ms += from + Math.random() * Math.max(0, to - from);
    }
    return ms;
  }

  private raised(task: Def, input: unknown, at: string, vars: Vars): WorkflowError {
    const e = evalTemplate(task.raise.error, input, vars) as Def;
    const status = typeof e.status === "number" ? e.status : Number(e.status);
    return new WorkflowError({ type: String(e.type), status, title: e.title, detail: e.detail, instance: e.instance ?? at });
  }

  private async runNested(def: Def, input: unknown, signal: AbortSignal): Promise<unknown> {
    const child = new WorkflowRun(def, { ...this.opts, input, context: { ...this.vars }, signal, id: undefined });
    const out = await child.run();
    if (out.status === "Faulted") throw new WorkflowError(out.error!);
    if (out.status === "Cancelled") throw signal.reason ?? new Error("cancelled");
    return out.output;
  }
}

/** errors.with: every given field must match; a type without a scheme names a spec error type. */
export function matchesFilter(filter: Def | undefined, err: WorkflowErrorShape): boolean {
  if (!filter) return true;
  if (filter.type !== undefined) {
    const want = String(filter.type);
    const full = want.includes(":") ? want : errorType(want.toLowerCase() as never);
    if (full !== err.type) return false;
  }
  if (filter.status !== undefined && Number(filter.status) !== err.status) return false;
  if (filter.instance !== undefined && filter.instance !== err.instance) return false;
  if (filter.title !== undefined && filter.title !== err.title) return false;
  const detail = filter.details ?? filter.detail;
  if (detail !== undefined && detail !== err.detail) return false;
  return true;
}

/** Runs `fn` with a signal that aborts after `ms`; expiry is a timeout error at `at`. */
async function withTimeout<T>(ms: number, parent: AbortSignal, at: string, fn: (s: AbortSignal) => Promise<T>): Promise<T> {
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort(parent.reason);
  if (parent.aborted) throw parent.reason;
  parent.addEventListener("abort", onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = WorkflowError.of("timeout", "timed out", `did not finish within ${ms} ms`, at);
      ctrl.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([fn(ctrl.signal), expired]);
  } finally {
    clearTimeout(timer);
    parent.removeEventListener("abort", onAbort);
  }
}

