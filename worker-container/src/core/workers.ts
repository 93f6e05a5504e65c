// Worker definitions: validation, storage and an in-process cache (the worker loop reads a definition per job).
import { create } from "@bufbuild/protobuf";
import {
  QueueTypeSchema,
  ResponseType,
  ResponseTypeSchema,
  RetryTypeSchema,
} from "../gen/jobworkerp/data/common_pb.js";
import { DedupMode, DedupModeSchema, WorkerSchema, type Worker, type WorkerData } from "../gen/jobworkerp/data/worker_pb.js";
import { failedPrecondition, invalid, notFound } from "./errors.js";
import type { ResultBus, Store } from "./ports.js";
import type { RunnerRegistry } from "./runners.js";
import { checkEnum, checkName, decodeOrInvalid } from "./validate.js";

export const DEFAULT_CHANNEL = "__default_job_channel__";

export const channelOf = (data: WorkerData) => (data.channel ? data.channel : DEFAULT_CHANNEL);

export class WorkerDefinitions {
  private cache = new Map<bigint, Worker>();
  private listeners = new Set<(id: bigint) => void>();

  constructor(
    private readonly store: Store,
    private readonly runners: RunnerRegistry,
    private readonly bus: ResultBus,
  ) {
    // A change made through any process reaches every process (Scalable: over Redis pub/sub).
    bus.onChanged((kind, id) => kind === "worker" && this.forget(id));
  }

  /** Called when a worker changes, is deleted or released (static runner pools drop their instances). */
  onChange(listener: (id: bigint) => void): void {
    this.listeners.add(listener);
  }

  private forget(id: bigint) {
    this.cache.delete(id);
    for (const l of this.listeners) l(id);
  }

  /** Tell every process that a worker's definition (or its static pool) must be dropped. */
  async changed(id: bigint): Promise<void> {
    this.forget(id); // at once here, whatever the transport's delay
    await this.bus.publishChanged("worker", id);
  }

  async validate(data: WorkerData): Promise<void> {
    checkName(data.name, "name");
    if (!data.runnerId) throw invalid("runner_id is required");
    const runnerId = data.runnerId.value;
    let def = this.runners.get(runnerId);
    if (!def) {
      const row = await this.store.findRunner(runnerId);
      if (!row) throw invalid(`runner_id ${runnerId} does not exist`);
      // a dynamic runner (e.g. an MCP server) is loaded from its row
      const loaded = this.runners.hasLoader(row.runnerType) ? await this.runners.load(row).catch((e: Error) => e) : undefined;
      if (loaded instanceof Error) throw failedPrecondition(`runner ${row.name} (${runnerId}) cannot be used now: ${loaded.message}`);
      if (!loaded) throw invalid(`runner ${row.name} (${runnerId}) is registered but not available in this process`);
      def = loaded;
    }
    if (def.settingsSchema) decodeOrInvalid(def.settingsSchema, data.runnerSettings, "runner_settings");
    const problem = def.checkSettings?.(data.runnerSettings);
    if (problem) throw invalid(`runner_settings: ${problem}`);
    else if (data.runnerSettings.length > 0 && def.settingsProto === "") {
      // runners without settings ignore them, as jobworkerp-rs does
    }
    checkEnum(QueueTypeSchema, data.queueType, "queue_type");
    checkEnum(ResponseTypeSchema, data.responseType, "response_type");
    if (data.retryPolicy) {
      checkEnum(RetryTypeSchema, data.retryPolicy.type, "retry_policy.type");
      if (!Number.isFinite(data.retryPolicy.basis) || data.retryPolicy.basis < 0) {
        throw invalid("retry_policy.basis must be a finite number >= 0");
      }
    }
    if (data.periodicInterval > 0 && data.responseType === ResponseType.DIRECT) {
      throw invalid("a periodic worker cannot have response_type DIRECT");
    }
    if (data.channel !== undefined && data.channel.length > 128) throw invalid("channel is longer than 128 characters");
    checkEnum(DedupModeSchema, data.dedup, "dedup");
    // every occurrence of a periodic job shares its id and args: deduplication would only ever see itself
    if (data.periodicInterval > 0 && data.dedup !== DedupMode.NONE) throw invalid("dedup cannot be used with a periodic worker");
  }

  async create(data: WorkerData): Promise<bigint> {
    await this.validate(data);
    return this.store.createWorker(data, Date.now());
  }

  async update(id: bigint, data: WorkerData): Promise<boolean> {
    await this.validate(data);
    const ok = await this.store.updateWorker(id, data);
    await this.changed(id);
    return ok;
  }

  async upsertByName(data: WorkerData): Promise<bigint> {
    await this.validate(data);
    const existing = await this.store.findWorkerByName(data.name);
    if (!existing) return this.store.createWorker(data, Date.now());
    const id = existing.id!.value;
    await this.store.updateWorker(id, data);
    await this.changed(id);
    return id;
  }

  /** Deletes the worker and its durable jobs (which stops a periodic worker). */
  async delete(id: bigint): Promise<boolean> {
    const ok = await this.store.deleteWorker(id);
    if (ok) await this.store.deleteJobsOfWorker(id);
    await this.changed(id);
    return ok;
  }

  async find(id: bigint): Promise<Worker | undefined> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const w = await this.store.findWorker(id);
    if (w) this.cache.set(id, w);
    return w;
  }

  /** Straight from the store (API reads: another process may have changed it a moment ago). */
  async findFresh(id: bigint): Promise<Worker | undefined> {
    const w = await this.store.findWorker(id);
    if (w) this.cache.set(id, w);
    else this.cache.delete(id);
    return w;
  }

  async findByName(name: string): Promise<Worker | undefined> {
    return this.store.findWorkerByName(name);
  }

  /** Resolve a worker reference (id or name) or fail with NOT_FOUND. */
  async resolve(ref: { case: "workerId"; value: { value: bigint } } | { case: "workerName"; value: string } | { case: undefined }): Promise<Worker> {
    if (ref.case === "workerId") {
      const w = await this.find(ref.value.value);
      if (!w) throw notFound(`worker ${ref.value.value} not found`);
      return w;
    }
    if (ref.case === "workerName") {
      if (ref.value.length === 0) throw invalid("worker_name must not be empty");
      const w = await this.findByName(ref.value);
      if (!w) throw notFound(`worker '${ref.value}' not found`);
      return w;
    }
    throw invalid("worker_id or worker_name is required");
  }
}

export const workerMessage = (id: bigint, data: WorkerData) => create(WorkerSchema, { id: { value: id }, data });
