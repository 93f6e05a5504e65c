// A job whose queue message reached a dead-letter queue (its worker crashed or lost the job on every delivery)
// must not vanish: it becomes a stored MAX_RETRY result (FATAL_ERROR when its worker is gone), published for its
// waiters, and its status, uniq_key and durable row are cleared as a normal finish would. The result is stored
// whatever the worker's store_failure says: nothing else would tell anyone what happened to the job.
import { create } from "@bufbuild/protobuf";
import { ResultOutputItemSchema, ResultStatus, StreamingType } from "../gen/jobworkerp/data/common_pb.js";
import type { JobResult } from "../gen/jobworkerp/data/job_result_pb.js";
import type { JobOutcomes } from "./outcomes.js";
import type { JobState, QueuedJob, ResultBus, Store } from "./ports.js";
import type { WorkerDefinitions } from "./workers.js";

export interface DeadLetter {
  item: QueuedJob;
  /** Deliveries the queue made before giving up (the channel's maxReceiveCount), when known. */
  deliveries?: number;
}

export class DeadLetterRecorder {
  constructor(
    private readonly deps: {
      store: Pick<Store, "insertResult">;
      state: Pick<JobState, "remove">;
      bus: Pick<ResultBus, "publishChunk" | "publishResult">;
      workers: Pick<WorkerDefinitions, "find">;
      outcomes: Pick<JobOutcomes, "build" | "finish" | "orphaned">;
    },
  ) {}

  /**
   * Record the job's failure; safe to repeat (a redelivered dead letter stores no second result: the Store keeps
   * one result per attempt). Throws on backend failures, so the caller can have the message delivered again.
   */
  async record(letter: DeadLetter, now = Date.now()): Promise<JobResult | undefined> {
    const { item } = letter;
    const { job } = item;
    const d = job.data!;
    const worker = await this.deps.workers.find(d.workerId!.value);
    let result: JobResult | undefined;
    if (!worker) {
      result = await this.deps.outcomes.orphaned(job); // clears its state and publishes FATAL_ERROR
      if (!item.loadOnly) await this.deps.store.insertResult(result);
    } else if (item.loadOnly) {
      // WorkerService.Load: its caller waits for a result, but it is not a user job: nothing is stored
      const t = BigInt(now);
      result = this.deps.outcomes.build(job, worker, ResultStatus.FATAL_ERROR, message(letter), { startTime: t, endTime: t });
      await this.deps.state.remove(job.id!.value);
      await this.deps.bus.publishResult(result, { broadcast: false, keepMs: 5_000 });
    } else {
      const t = BigInt(now);
      const periodic = worker.data!.periodicInterval > 0;
      const make = () => (result ??= this.deps.outcomes.build(job, worker, ResultStatus.MAX_RETRY, message(letter), { startTime: t, endTime: t }));
      await this.deps.outcomes.finish(job, worker, ResultStatus.MAX_RETRY, make, undefined, { durable: !!item.durable, periodic, storeAlways: true });
    }
    if (d.streamingType !== StreamingType.NONE) {
      await this.deps.bus.publishChunk(job.id!.value, create(ResultOutputItemSchema, { item: { case: "end", value: { metadata: {} } } }));
    }
    return result;
  }
}

function message(letter: DeadLetter): Uint8Array {
  const n = letter.deliveries ? `${letter.deliveries} deliveries` : "repeated deliveries";
  return new TextEncoder().encode(
    `the job's message reached the dead-letter queue after ${n}: its worker failed or crashed each time before finishing it`,
  );
}
