// The JobHost over the System: a run task becomes a DIRECT job through the JobFront, on a named worker or on
// a temporary worker of a named runner (deleted afterwards). Args/settings/results travel as protobuf JSON
// converted with the runner's own schemas. Aborting the signal cancels the job.
import { create, fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { QueueType, ResponseType, ResultStatus, RetryType } from "../../gen/jobworkerp/data/common_pb.js";
import { WorkerDataSchema, type Worker, type WorkerData } from "../../gen/jobworkerp/data/worker_pb.js";
import { JobRequestSchema } from "../../gen/jobworkerp/service/job_pb.js";
import type { System } from "../../core/system.js";
import { canStream, resolveMethod } from "../../core/runners.js";
import type { MethodDefinition, RunnerDefinition } from "../runner.js";
import { durationMs } from "./duration.js";
import { WorkflowError } from "./errors.js";
import type { JobCall, JobCallHooks, JobHost } from "./host.js";
import { StoreCheckpoints } from "./checkpoint.js";

const DEFAULT_JOB_TIMEOUT_MS = 3_600_000;
type Deps = Pick<System, "store" | "runners" | "workers" | "front" | "ids">;

function fromJsonOr(desc: DescMessage, json: unknown, what: string) {
  try {
    // undefined fields (left out by the caller) are not JSON
    return fromJson(desc, JSON.parse(JSON.stringify(json ?? {})) as JsonValue, { ignoreUnknownFields: false });
  } catch (e) {
    throw WorkflowError.of("validation", `invalid ${what}`, `${desc.typeName}: ${(e as Error).message}`);
  }
}

/** jobworkerp workerOptions.retry (a spec retry policy) → the worker's RetryPolicy. */
function retryPolicy(r: Record<string, any> | undefined) {
  if (!r) return { type: RetryType.NONE };
  const b = r.backoff ?? {};
  const type = b.exponential ? RetryType.EXPONENTIAL : b.linear ? RetryType.LINEAR : RetryType.CONSTANT;
  return { type, interval: durationMs(r.delay) ?? 1000, maxRetry: r.limit?.attempt?.count ?? 3, basis: 2 };
}

function collect(method: MethodDefinition, chunks: Uint8Array[]): Uint8Array {
  if (method.collectStream) return method.collectStream(chunks);
  return chunks.at(-1) ?? new Uint8Array();
}

export class SystemJobHost implements JobHost {
  readonly checkpoints: StoreCheckpoints;

  constructor(private readonly sys: Deps) {
    this.checkpoints = new StoreCheckpoints(sys.store);
  }

  private async runnerByName(name: string): Promise<RunnerDefinition> {
    const row = this.sys.runners.builtinRows(0).find((r) => r.name === name) ?? (await this.sys.store.findRunnerByName(name));
    const def = row && (this.sys.runners.get(row.id) ?? (await this.sys.runners.load(row).catch(() => undefined)));
    if (!def) throw WorkflowError.of("configuration", "unknown runner", `no runner named '${name}'`);
    return def;
  }

  /** Whether a runner or worker of that name exists (checked before a workflow runs). */
  async exists(kind: "runner" | "worker", name: string): Promise<boolean> {
    if (kind === "worker") return (await this.sys.workers.findByName(name)) !== undefined;
    return this.runnerByName(name).then(
      () => true,
      () => false,
    );
  }

  createWorker(data: WorkerData): Promise<bigint> {
    return this.sys.workers.create(data);
  }

  async call(c: JobCall, signal: AbortSignal, hooks: JobCallHooks = {}): Promise<unknown> {
    let worker: Worker | undefined;
    let def: RunnerDefinition;
    let temporary: bigint | undefined;
    if (c.worker !== undefined) {
      worker = await this.sys.workers.findByName(c.worker);
      if (!worker) throw WorkflowError.of("configuration", "unknown worker", `no worker named '${c.worker}'`);
      const d = await this.sys.runners.find(worker.data!.runnerId!.value);
      if (!d) throw WorkflowError.of("configuration", "runner unavailable", `the runner of worker '${c.worker}' is not available`);
      def = d;
    } else {
      def = await this.runnerByName(c.runner!);
    }
    let method;
    let using: string;
    try {
      [using, method] = resolveMethod(def, c.using);
    } catch (e) {
      throw WorkflowError.of("configuration", "unknown method", (e as Error).message);
    }
    const args = toBinary(method.argsSchema, fromJsonOr(method.argsSchema, c.args, "arguments"));
    // a method without streamed output runs unary even under useStreaming
    const stream = !!c.stream && !c.noWait && canStream(method);
    if (!worker) {
      const settings = def.settingsSchema ? toBinary(def.settingsSchema, fromJsonOr(def.settingsSchema, c.settings, "settings")) : new Uint8Array();
      const o = (c.options ?? {}) as Record<string, any>;
      temporary = await this.sys.workers.create(
        create(WorkerDataSchema, {
          name: `__workflow_${def.name}_${this.sys.ids.next()}`,
          description: "temporary worker of a workflow run task",
          runnerId: { value: def.id },
          runnerSettings: settings,
          responseType: ResponseType.DIRECT,
          channel: o.channel,
          queueType: QueueType.NORMAL,
          storeSuccess: o.storeSuccess ?? false,
          storeFailure: o.storeFailure ?? true,
          broadcastResults: o.broadcastResults ?? false,
          useStatic: false,
          retryPolicy: retryPolicy(o.retry),
        }),
      );
    }
    const cleanup = () => (temporary !== undefined ? this.sys.workers.delete(temporary).catch(() => undefined) : undefined);
    const workerId = worker?.id!.value ?? temporary!;
    let enq;
    try {
      enq = await this.sys.front.enqueue(
        create(JobRequestSchema, {
          worker: { case: "workerId", value: { value: workerId } },
          args,
          using,
          timeout: BigInt(c.timeoutMs ?? DEFAULT_JOB_TIMEOUT_MS),
          overrides: { responseType: ResponseType.DIRECT },
        }),
        c.metadata ?? {},
        stream ? "stream" : "unary",
        signal,
      );
    } catch (e) {
      await cleanup();
      throw WorkflowError.of("runtime", "cannot enqueue job", (e as Error).message);
    }
    const jobId = enq.job.id!.value;
    hooks.onStarted?.(jobId.toString(), def.name, worker?.data!.name, stream);
    const chunks: Uint8Array[] = [];
    const finish = async () => {
      try {
        for await (const item of enq.chunks ?? []) {
          if (item.item.case === "end") break;
          if (item.item.case !== "data") continue;
          chunks.push(item.item.value);
          hooks.onData?.(jobId.toString(), item.item.value);
        }
      } catch (e) {
        await cleanup();
        throw e;
      }
      const result = await enq.result;
      await cleanup();
      const d = result?.data;
      const stored = d && (d.status === ResultStatus.SUCCESS ? d.storeSuccess : d.storeFailure);
      hooks.onCompleted?.(jobId.toString(), stored ? result!.id?.value.toString() : undefined);
      return result;
    };
    if (c.noWait) {
      void finish().catch(() => undefined);
      return null;
    }
    // a task coalesced onto another caller's job (dedup) must not cancel it
    const onAbort = () => void (enq.coalesced ? undefined : this.sys.front.delete(jobId).catch(() => undefined));
    signal.addEventListener("abort", onAbort, { once: true });
    let result;
    try {
      result = await finish();
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    if (!result) {
      if (signal.aborted) throw signal.reason;
      throw WorkflowError.of("timeout", "job timed out", `job ${jobId} did not finish in time`);
    }
    const d = result.data!;
    // a streamed job's result carries no output: its chunks are collected the way the method defines
    const bytes = stream && d.status === ResultStatus.SUCCESS ? collect(method, chunks) : (d.output?.items ?? new Uint8Array());
    if (d.status !== ResultStatus.SUCCESS) {
      throw WorkflowError.of("runtime", "job failed", `${def.name} job ${jobId} ${ResultStatus[d.status] ?? d.status}: ${new TextDecoder().decode(bytes).slice(0, 1000)}`);
    }
    try {
      return toJson(method.resultSchema, fromBinary(method.resultSchema, bytes), { useProtoFieldName: true });
    } catch {
      // runners whose results are JSON text (e.g. MCP tools without a schema)
      return new TextDecoder().decode(bytes);
    }
  }
}
