// The worker loop: per channel, `concurrency` loops lease a job, claim it (fencing token), run the runner
// under the job's timeout and cancellation, retry per the policy, and finish it (store, publish, ack).
import { clone, create } from "@bufbuild/protobuf";
import { JobProcessingStatus, ResultOutputItemSchema, ResultStatus, StreamingType } from "../gen/jobworkerp/data/common_pb.js";
import { JobExecutionOverridesSchema, JobSchema, type Job } from "../gen/jobworkerp/data/job_pb.js";
import type { Worker } from "../gen/jobworkerp/data/worker_pb.js";
import { RunnerError } from "../runners/runner.js";
import { MAX_TIMER_MS } from "./async.js";
import { recordRun, startJobSpans, type JobSpans } from "../observability/index.js";
import { AppError } from "./errors.js";
import { statusEntry } from "./job_front.js";
import { effective } from "./outcomes.js";
import type { Lease } from "./ports.js";
import { nextRetryDelay, retryLimit } from "./retry.js";
import { resolveMethod } from "./runners.js";
import type { System } from "./system.js";
import { WeightedLeaser, type SubQueueWeight } from "./weighted.js";

export interface ChannelConcurrency {
  name: string;
  concurrency: number;
  /** Weighted sub-queues (`name:sub` channels, see core/weighted.ts): leased in proportion instead of `name` alone. */
  subQueues?: SubQueueWeight[];
}

class Cancelled extends Error {
  constructor() {
    super("job cancelled");
  }
}
class LeaseLost extends Error {
  constructor() {
    super("the queue lease was lost (the job was delivered again elsewhere)");
  }
}
class TimedOut extends Error {
  constructor(ms: bigint) {
    super(`job timed out after ${ms} ms`);
  }
}

const utf8 = new TextEncoder();

export class Dispatcher {
  private readonly stop = new AbortController();
  private loops: Promise<void>[] = [];
  private running = new Map<bigint, AbortController>();
  private acking = new Set<Promise<unknown>>();
  private unsubscribeCancel?: () => void;

  constructor(
    private readonly deps: Pick<System, "store" | "queue" | "state" | "bus" | "workers" | "runners" | "runnerInstances" | "outcomes">,
    readonly channels: ChannelConcurrency[],
    private readonly onError: (e: unknown, job?: Job, channel?: string) => void,
    /** The queue's lease length: leases are renewed every third of it while a job is handled. */
    private readonly leaseMs = 30_000,
  ) {}

  start(): void {
    this.unsubscribeCancel = this.deps.bus.onCancel((id) => this.running.get(id)?.abort(new Cancelled()));
    for (const ch of this.channels) {
      const weighted = ch.subQueues?.length ? new WeightedLeaser(this.deps.queue, ch.subQueues) : undefined;
      const lease = weighted ? () => weighted.lease(this.stop.signal) : () => this.deps.queue.lease(ch.name, this.stop.signal);
      for (let i = 0; i < ch.concurrency; i++) this.loops.push(this.loop(ch, lease));
    }
  }

  /** Stop leasing and wait for in-flight jobs to finish (each is bounded by its own timeout). */
  async shutdown(): Promise<void> {
    this.stop.abort();
    await Promise.all(this.loops);
    await Promise.all(this.acking);
    this.unsubscribeCancel?.();
  }

  get inFlight(): number {
    return this.running.size;
  }

  isRunning(jobId: bigint): boolean {
    return this.running.has(jobId);
  }

  private async loop(ch: ChannelConcurrency, next: () => Promise<Lease | undefined>): Promise<void> {
    while (!this.stop.signal.aborted) {
      let lease: Lease | undefined;
      try {
        lease = await next();
        if (!lease) continue;
        const stopHeartbeat = this.heartbeat(lease);
        const spans = startJobSpans(lease.item.job, ch.name, lease.item.loadOnly); // undefined unless tracing
        try {
          await this.process(lease, ch, spans);
        } catch (e) {
          spans?.end(e);
          throw e;
        } finally {
          stopHeartbeat();
          spans?.end();
        }
      } catch (e) {
        this.onError(e, lease?.item.job, ch.name);
      }
    }
  }

  /** Renews the lease while the job is handled; if it is lost, the run is aborted (its result would be fenced off anyway). */
  private heartbeat(lease: Lease): () => void {
    const id = lease.item.job.id!.value;
    const timer = setInterval(() => {
      this.deps.queue.extend(lease, this.leaseMs).then(
        (held) => held || this.running.get(id)?.abort(new LeaseLost()),
        (e) => this.onError(e, lease.item.job, lease.item.channel),
      );
    }, Math.max(10, Math.floor(this.leaseMs / 3)));
    return () => clearInterval(timer);
  }

  private async process(lease: Lease, ch: ChannelConcurrency, spans: JobSpans | undefined): Promise<void> {
    const { queue, state, workers, outcomes } = this.deps;
    const { job, durable = false, loadOnly = false } = lease.item;
    const d = job.data!;
    const id = job.id!.value;
    const worker = await workers.find(d.workerId!.value);
    if (!worker) {
      await outcomes.orphaned(job);
      if (d.streamingType !== StreamingType.NONE) await this.endStream(id);
      this.ack(lease);
      return;
    }
    const periodic = worker.data!.periodicInterval > 0;
    const where = { durable, periodic };
    const startTime = BigInt(Date.now());
    const claim = await state.claim({ ...statusEntry(job, worker, startTime), status: JobProcessingStatus.RUNNING }, startTime);
    if (!claim) {
      spans?.ran(worker, ResultStatus.CANCELLED);
      const cancelled = () => outcomes.build(job, worker, ResultStatus.CANCELLED, utf8.encode("job cancelled"), { startTime, endTime: startTime });
      await outcomes.finish(job, worker, ResultStatus.CANCELLED, cancelled, undefined, where);
      this.ack(lease);
      return;
    }

    const [status, output] = await this.run(job, worker, ch, loadOnly);
    const endTime = BigInt(Date.now());
    if (loadOnly) {
      // WorkerService.Load waits for this; it is not a user job, so nothing is stored or broadcast
      await state.finish(id, claim);
      await this.deps.bus.publishResult(outcomes.build(job, worker, status, output, { startTime, endTime }), { broadcast: false, keepMs: 5_000 });
      this.ack(lease);
      return;
    }
    spans?.ran(worker, status);
    recordRun(worker, status, startTime, endTime);

    if (status === ResultStatus.ERROR_AND_RETRY) {
      const e = effective(job, worker);
      const delay = nextRetryDelay(e.retryPolicy, d.retried);
      if (delay !== undefined) {
        await outcomes.storeIfWanted(outcomes.build(job, worker, status, output, { startTime, endTime }), e);
        const retry = clone(JobSchema, job);
        retry.data!.retried = d.retried + 1;
        retry.data!.runAfterTime = endTime + BigInt(delay);
        // the retry keeps the settings it started with, even if the worker changes meanwhile
        retry.data!.overrides = create(JobExecutionOverridesSchema, { ...e });
        if (await state.markPendingForRetry(id, claim, endTime)) {
          if (durable && !periodic) await this.deps.store.updateJob(retry);
          // due at endTime + delay (its run_after_time), however long the writes above took
          await queue.requeue(lease, { ...lease.item, job: retry }, Math.max(0, delay - (Date.now() - Number(endTime))));
        } else this.ack(lease); // cancelled meanwhile, or a newer attempt owns the job
        spans?.settled("RETRY");
        return;
      }
    }
    const finalStatus = status === ResultStatus.ERROR_AND_RETRY ? ResultStatus.MAX_RETRY : status;
    const result = () => outcomes.build(job, worker, finalStatus, output, { startTime, endTime });
    await outcomes.finish(job, worker, finalStatus, result, claim, where);
    spans?.settled(finalStatus);
    if (d.streamingType !== StreamingType.NONE) await this.endStream(id);
    this.ack(lease);
  }

  /**
   * A handled job's ack is not waited for: the loop leases its next job meanwhile, so the ack and the next lease
   * travel together (with other loops' in one script each). If the process dies first, the job runs again,
   * as it would if it died just before acking.
   */
  private ack(lease: Lease): void {
    const p = this.deps.queue.ack(lease).catch((e) => this.onError(e, lease.item.job, lease.item.channel));
    this.acking.add(p);
    void p.finally(() => this.acking.delete(p));
  }

  private endStream(id: bigint): Promise<void> {
    return this.deps.bus.publishChunk(id, create(ResultOutputItemSchema, { item: { case: "end", value: { metadata: {} } } }));
  }

  /** A dynamic runner (e.g. an MCP server) this process has not loaded yet: from its row; failing to load fails the job. */
  private async findDynamic(runnerId: bigint) {
    try {
      return await this.deps.runners.find(runnerId);
    } catch (e) {
      throw new RunnerError("ERROR_AND_RETRY", `runner ${runnerId} could not be loaded: ${(e as Error).message}`);
    }
  }

  /** Run the runner once; never throws: failures become a status and a UTF-8 message. */
  private async run(job: Job, worker: Worker, ch: ChannelConcurrency, loadOnly: boolean): Promise<[ResultStatus, Uint8Array]> {
    const d = job.data!;
    const id = job.id!.value;
    const controller = new AbortController();
    this.running.set(id, controller);
    const timer = d.timeout > 0n ? longTimeout(() => controller.abort(new TimedOut(d.timeout)), d.timeout) : undefined;
    try {
      const runnerId = worker.data!.runnerId!.value;
      const def = this.deps.runners.get(runnerId) ?? (await this.findDynamic(runnerId));
      if (!def) throw new RunnerError("FATAL_ERROR", `runner ${runnerId} is not available in this process`);
      const [using] = resolveMethod(def, d.using);
      const borrowed = await this.deps.runnerInstances.acquire(worker, def, ch.concurrency);
      let broken = false;
      try {
        if (loadOnly) return [ResultStatus.SUCCESS, new Uint8Array()];
        const ctx = {
          signal: controller.signal, using, jobId: id, metadata: job.metadata,
          retried: d.retried, maxRetry: retryLimit(effective(job, worker).retryPolicy), channel: ch.name,
        };
        if (d.streamingType !== StreamingType.NONE) {
          if (!borrowed.instance.runStream) throw new RunnerError("FATAL_ERROR", `${def.name} cannot stream`);
          for await (const chunk of borrowed.instance.runStream(d.args, ctx)) {
            await this.deps.bus.publishChunk(id, create(ResultOutputItemSchema, { item: { case: "data", value: chunk } }));
          }
          return [ResultStatus.SUCCESS, new Uint8Array()];
        }
        return [ResultStatus.SUCCESS, await borrowed.instance.run(d.args, ctx)];
      } catch (e) {
        // an aborted instance may hold half-done state, unless it says it cleans up itself
        broken = controller.signal.aborted && !borrowed.instance.recoversFromAbort;
        throw e;
      } finally {
        await borrowed.release(broken);
      }
    } catch (e) {
      return classify(e, controller.signal);
    } finally {
      timer?.cancel();
      this.running.delete(id);
    }
  }
}

function classify(e: unknown, signal: AbortSignal): [ResultStatus, Uint8Array] {
  if (signal.aborted) {
    const reason = signal.reason;
    if (reason instanceof Cancelled) return [ResultStatus.CANCELLED, utf8.encode(reason.message)];
    return [ResultStatus.ERROR_AND_RETRY, utf8.encode((reason as Error).message ?? "aborted")];
  }
  if (e instanceof RunnerError) return [ResultStatus[e.kind], utf8.encode(e.message)];
  if (e instanceof AppError) return [ResultStatus.FATAL_ERROR, utf8.encode(e.message)];
  return [ResultStatus.OTHER_ERROR, utf8.encode(e instanceof Error ? e.message : String(e))];
}

/** setTimeout for delays beyond Node's 24.8-day limit (jobworkerp's default timeout is one year). */
function longTimeout(fn: () => void, ms: bigint): { cancel(): void } {
  let t: NodeJS.Timeout;
  let left = ms;
  const arm = () => {
    const step = left > BigInt(MAX_TIMER_MS) ? MAX_TIMER_MS : Number(left);
    left -= BigInt(step);
    t = setTimeout(() => (left > 0n ? arm() : fn()), step);
  };
  arm();
  return { cancel: () => clearTimeout(t) };
}
