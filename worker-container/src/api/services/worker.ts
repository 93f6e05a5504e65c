import { create } from "@bufbuild/protobuf";
import { ResultStatus } from "../../gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../gen/jobworkerp/data/job_pb.js";
import type { WorkerService } from "../../gen/jobworkerp/service/worker_pb.js";
import { AppError, invalid, notFound } from "../../core/errors.js";
import { DEFAULT_TIMEOUT_MS, statusEntry } from "../../core/job_front.js";
import type { WorkerFilter } from "../../core/ports.js";
import type { System } from "../../core/system.js";
import { channelOf, DEFAULT_CHANNEL } from "../../core/workers.js";
import type { ServiceImpl } from "../context.js";
import { failedJob, page } from "./paging.js";

export function workerService(sys: System): ServiceImpl<typeof WorkerService> {
  const { workers, store } = sys;
  const filterOf = (r: { runnerTypes: number[]; runnerIds: { value: bigint }[]; channel?: string; nameFilter?: string; isPeriodic?: boolean }): WorkerFilter => ({
    runnerTypes: r.runnerTypes.length ? r.runnerTypes : undefined,
    runnerIds: r.runnerIds.length ? r.runnerIds.map((i) => i.value) : undefined,
    channel: r.channel,
    namePrefix: r.nameFilter,
    isPeriodic: r.isPeriodic,
  });
  const target = async (t: { case: "workerId"; value: { value: bigint } } | { case: "name"; value: string } | { case: undefined }) => {
    const w = await workers.resolve(t.case === "name" ? { case: "workerName", value: t.value } : t);
    return w;
  };

  return {
    async create(data) {
      return { id: { value: await workers.create(data) } };
    },
    async upsertByName(data) {
      return { id: { value: await workers.upsertByName(data) } };
    },
    async update(w) {
      if (!w.id || !w.data) throw invalid("id and data are required");
      if (!(await workers.update(w.id.value, w.data))) throw notFound(`worker ${w.id.value} not found`);
      return { isSuccess: true };
    },
    async delete(id) {
      if (!(await workers.delete(id.value))) throw notFound(`worker ${id.value} not found`);
      return { isSuccess: true };
    },
    async find(id) {
      return { data: await workers.findFresh(id.value) };
    },
    async findByName(req) {
      return { data: await workers.findByName(req.name) };
    },
    async *findList(req) {
      const p = page(req.limit, req.offset, 10_000, 10_000);
      yield* await store.findWorkers({ ...filterOf(req), ...p, sortBy: req.sortBy, ascending: req.ascending });
    },
    async count() {
      return { total: BigInt(await store.countWorkers({})) };
    },
    async countBy(req) {
      return { total: BigInt(await store.countWorkers(filterOf(req))) };
    },
    async findChannelList() {
      const counts = await store.countWorkersByChannel(DEFAULT_CHANNEL);
      const served = new Map(sys.channels.map((c) => [c.name, c.concurrency]));
      const alive = (await sys.instances.list()).filter((i) => Date.now() - Number(i.data!.lastHeartbeat) <= sys.instanceTimeoutMs);
      const names = new Set([...served.keys(), ...counts.keys()]);
      return {
        channels: [...names].sort().map((name) => {
          const instances = alive.filter((i) => i.data!.channels.some((c) => c.name === name));
          const total = instances.reduce((s, i) => s + (i.data!.channels.find((c) => c.name === name)?.concurrency ?? 0), 0);
          return {
            name,
            concurrency: served.get(name) ?? 0,
            workerCount: BigInt(counts.get(name) ?? 0),
            totalConcurrency: total,
            activeInstances: instances.length,
          };
        }),
      };
    },
    async releaseStaticWorker(req) {
      // the pools live in the worker processes: every process drops the worker's static instances
      const w = await target(req.target);
      await workers.changed(w.id!.value);
      return { isSuccess: true };
    },
    async load(req, ctx) {
      // Runs the runner's load (settings check, static pool warm-up) on a worker process, like jobworkerp's load_only job.
      const w = await target(req.target);
      const now = BigInt(Date.now());
      const job = create(JobSchema, {
        id: { value: sys.ids.next() },
        data: { workerId: w.id, enqueueTime: now, timeout: DEFAULT_TIMEOUT_MS },
        metadata: {},
      });
      const timeoutMs = Number(req.timeoutMs ?? 30_000n);
      const result = sys.bus.waitResult(job.id!.value, timeoutMs, ctx.signal);
      await sys.state.setPending(statusEntry(job, w, now));
      await sys.queue.push({ job, channel: channelOf(w.data!), loadOnly: true });
      const r = await result;
      if (!r) {
        // nobody took the load job: take it back so it does not linger as a pending job
        await sys.queue.remove(job.id!.value);
        await sys.state.remove(job.id!.value);
      }
      if (!r) throw new AppError("DEADLINE_EXCEEDED", `worker '${w.data!.name}' was not loaded within ${timeoutMs} ms (is its channel served?)`);
      if (r.data!.status !== ResultStatus.SUCCESS) throw failedJob(r);
      return { isSuccess: true };
    },
  };
}
