import type { JobResultService } from "../../gen/jobworkerp/service/job_result_pb.js";
import { ResultStatus } from "../../gen/jobworkerp/data/common_pb.js";
import type { JobResult } from "../../gen/jobworkerp/data/job_result_pb.js";
import { AppError, failedPrecondition, invalid, notFound } from "../../core/errors.js";
import type { JobResultFilter } from "../../core/ports.js";
import type { System } from "../../core/system.js";
import type { Worker } from "../../gen/jobworkerp/data/worker_pb.js";
import type { ServiceImpl } from "../context.js";
import { failedJob, jobIdHeader, page } from "./paging.js";

/** How long a Listen on a job that is gone waits for a result being published (finish clears the status first). */
const FINISH_GRACE_MS = 1000;

const DAY_MS = 86_400_000;

export function jobResultService(sys: System): ServiceImpl<typeof JobResultService> {
  const { store, bus, workers, front } = sys;

  const filterOf = (r: {
    workerIds: { value: bigint }[];
    statuses: number[];
    startTimeFrom?: bigint;
    startTimeTo?: bigint;
    endTimeFrom?: bigint;
    endTimeTo?: bigint;
    priorities: number[];
    uniqKey?: string;
  }): JobResultFilter => ({
    workerIds: r.workerIds.length ? r.workerIds.map((w) => w.value) : undefined,
    statuses: r.statuses.length ? r.statuses : undefined,
    startTimeFrom: r.startTimeFrom,
    startTimeTo: r.startTimeTo,
    endTimeFrom: r.endTimeFrom,
    endTimeTo: r.endTimeTo,
    priorities: r.priorities.length ? r.priorities : undefined,
    uniqKey: r.uniqKey,
  });

  /** Listening needs the worker to broadcast its results (as in jobworkerp-rs). */
  async function broadcastingWorker(ref: Parameters<typeof workers.resolve>[0]): Promise<Worker> {
    const w = await workers.resolve(ref);
    if (!w.data!.broadcastResults) {
      throw failedPrecondition(`worker '${w.data!.name}' does not broadcast its results (set broadcast_results to listen)`);
    }
    return w;
  }

  /** The final result of a job: already published, stored, or the next one to come. */
  async function awaitResult(jobId: bigint, timeoutMs: number, signal: AbortSignal): Promise<JobResult> {
    const kept = await bus.waitResult(jobId, 0);
    if (kept) return kept;
    if (!(await front.find(jobId))) {
      const stored = await store.findResultsByJobId(jobId);
      if (stored.length > 0) return stored[stored.length - 1];
      // a worker finishing the job clears its status a moment before it publishes the result: wait out that moment
      const finishing = await bus.waitResult(jobId, Math.min(timeoutMs, FINISH_GRACE_MS), signal);
      if (finishing) return finishing;
      throw notFound(`job ${jobId} is neither pending nor running, and no result of it is kept`);
    }
    const r = await bus.waitResult(jobId, timeoutMs, signal);
    if (r) return r;
    if (signal.aborted) throw new AppError("CANCELLED", "client cancelled the call");
    throw new AppError("DEADLINE_EXCEEDED", `no result for job ${jobId} within ${timeoutMs} ms`);
  }

  return {
    async delete(id) {
      if (!(await store.deleteResult(id.value))) throw notFound(`job result ${id.value} not found`);
      return { isSuccess: true };
    },
    async find(id) {
      return { data: await store.findResult(id.value) };
    },
    async *findList(req) {
      const p = page(req.limit, req.offset, 100, 1000);
      yield* await store.findResults(p);
    },
    async *findListByJobId(req) {
      if (!req.jobId) throw invalid("job_id is required");
      yield* await store.findResultsByJobId(req.jobId.value);
    },
    async listen(req, ctx) {
      if (!req.jobId) throw invalid("job_id is required");
      await broadcastingWorker(req.worker);
      return awaitResult(req.jobId.value, Number(req.timeout ?? BigInt(DAY_MS)), ctx.signal);
    },
    async *listenStream(req, ctx) {
      if (!req.jobId) throw invalid("job_id is required");
      await broadcastingWorker(req.worker);
      const jobId = req.jobId.value;
      const job = await front.find(jobId);
      if (!job) throw notFound(`job ${jobId} is neither pending nor running`);
      if (job.data!.streamingType === 0) throw failedPrecondition(`job ${jobId} was not enqueued for streaming`);
      const chunks = bus.subscribeChunks(jobId, ctx.signal);
      ctx.sendHeaders(jobIdHeader(req.jobId));
      for await (const item of chunks) {
        if (item.item.case === "end") {
          const r = await bus.waitResult(jobId, 5_000, ctx.signal);
          if (r && r.data!.status !== ResultStatus.SUCCESS) throw failedJob(r);
        }
        yield item;
      }
    },
    async *listenByWorker(req, ctx) {
      const w = await broadcastingWorker(req.worker);
      yield* bus.subscribeWorker(w.id!.value, ctx.signal);
    },
    async count() {
      return { total: BigInt(await store.countResults({})) };
    },
    async *findListBy(req) {
      const p = page(req.limit, req.offset, 100, 1000, 10_000);
      yield* await store.findResults({ ...filterOf(req), ...p, sortBy: req.sortBy, ascending: req.ascending });
    },
    async countBy(req) {
      return { total: BigInt(await store.countResults(filterOf(req))) };
    },
    async deleteBulk(req) {
      if (req.endTimeBefore === undefined && req.statuses.length === 0 && req.workerIds.length === 0) {
        throw invalid("give at least one condition (end_time_before, statuses or worker_ids); refusing to delete every result");
      }
      const n = await store.deleteResults({
        endTimeBefore: req.endTimeBefore,
        statuses: req.statuses.length ? req.statuses : undefined,
        workerIds: req.workerIds.length ? req.workerIds.map((w) => w.value) : undefined,
      });
      return { deletedCount: BigInt(n) };
    },
  };
}
