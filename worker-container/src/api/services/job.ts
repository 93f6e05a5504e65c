import { ResultStatus } from "../../gen/jobworkerp/data/common_pb.js";
import type { Job } from "../../gen/jobworkerp/data/job_pb.js";
import type { JobService } from "../../gen/jobworkerp/service/job_pb.js";
import { AppError, invalid } from "../../core/errors.js";
import type { System } from "../../core/system.js";
import type { ServiceImpl } from "../context.js";
import { failedJob, jobIdHeader, page } from "./paging.js";

export function jobService(sys: System): ServiceImpl<typeof JobService> {
  const { front, state, store, queue } = sys;

  /** Jobs the system knows: queued/running (job state) and durable (store), without duplicates. */
  async function allJobs(): Promise<Job[]> {
    const live = (await state.findAll({})).map((e) => e.job);
    const seen = new Set(live.map((j) => j.id!.value));
    const durable = (await store.findJobs(100_000, 0)).filter((j) => !seen.has(j.id!.value));
    return [...live, ...durable].sort((a, b) => (a.id!.value < b.id!.value ? -1 : 1));
  }

  return {
    async enqueue(req, ctx) {
      const { job, result } = await front.enqueue(req, ctx.metadata, "unary", ctx.signal);
      if (!result) return { id: job.id };
      const r = await result;
      if (!r) {
        if (ctx.signal.aborted) throw new AppError("CANCELLED", "client cancelled the call");
        throw new AppError("DEADLINE_EXCEEDED", `job_id=${job.id!.value}: no result within the job's timeout`);
      }
      // as jobworkerp-rs: a failed DIRECT job is still a normal answer carrying its result (status, error text);
      // only streaming RPCs turn a failure into an error status (their payload has no room for the result)
      return { id: job.id, result: r };
    },

    async *enqueueForStream(req, ctx) {
      const { job, chunks, result } = await front.enqueue(req, ctx.metadata, "stream", ctx.signal);
      ctx.sendHeaders(jobIdHeader(job.id!));
      for await (const item of chunks!) {
        if (item.item.case === "end") {
          const r = await result;
          if (r && r.data!.status !== ResultStatus.SUCCESS) throw failedJob(r);
          yield item;
          return;
        }
        yield item;
      }
      if (!ctx.signal.aborted) throw new AppError("INTERNAL", `job_id=${job.id!.value}: stream ended without a result`);
    },

    async *enqueueWithClientStream(reqs) {
      // No runner of this build takes a client stream (require_client_stream); validate the job and refuse clearly.
      for await (const r of reqs) {
        if (r.request.case !== "jobRequest") throw invalid("the first message must be a job_request");
        await front.prepare(r.request.value, {}, "stream").catch((e) => {
          if (e instanceof AppError && e.message.includes("does not stream")) return;
          throw e;
        });
        throw invalid("the worker's method does not take a client stream (require_client_stream is false); use Enqueue or EnqueueForStream");
      }
      throw invalid("no job_request received");
    },

    async delete(id) {
      return { isSuccess: await front.delete(id.value) };
    },

    async find(id) {
      return { data: await front.find(id.value) };
    },

    async *findList(req) {
      const p = page(req.limit, req.offset, 1000, 100_000);
      yield* (await allJobs()).slice(p.offset, p.offset + p.limit);
    },

    async *findQueueList(req) {
      const p = page(req.limit, 0, 1000, 100_000);
      for (const item of await queue.list(req.channel, p.limit)) {
        yield { job: item.job, status: (await state.find(item.job.id!.value))?.status };
      }
    },

    async *findListWithProcessingStatus(req) {
      const p = page(req.limit, 0, 1000, 100_000);
      for (const e of await state.findAll({ status: req.status, limit: p.limit })) yield { job: e.job, status: e.status };
    },

    async count() {
      return { total: BigInt((await allJobs()).length) };
    },
  };
}
