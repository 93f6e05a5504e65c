import { create } from "@bufbuild/protobuf";
import { JobProcessingStatus, JobProcessingStatusSchema } from "../../gen/jobworkerp/data/common_pb.js";
import {
  CountJobProcessingStatusMode,
  JobProcessingStatusCountSchema,
  type JobProcessingStatusService,
} from "../../gen/jobworkerp/service/job_pb.js";
import { invalid } from "../../core/errors.js";
import type { JobStatusFilter } from "../../core/ports.js";
import type { System } from "../../core/system.js";
import { checkEnum } from "../../core/validate.js";
import type { ServiceImpl } from "../context.js";
import { page } from "./paging.js";

const HOUR_MS = 3_600_000n;

export function jobStatusService(sys: System): ServiceImpl<typeof JobProcessingStatusService> {
  const { state } = sys;
  const filterOf = (r: { status?: number; workerId?: bigint; channel?: string; minElapsedTimeMs?: bigint }): JobStatusFilter => {
    if (r.status !== undefined) checkEnum(JobProcessingStatusSchema, r.status, "status");
    if (r.minElapsedTimeMs !== undefined && r.minElapsedTimeMs < 0n) throw invalid("min_elapsed_time_ms must be >= 0");
    return { status: r.status, workerId: r.workerId, channel: r.channel, minElapsedTimeMs: r.minElapsedTimeMs === undefined ? undefined : Number(r.minElapsedTimeMs) };
  };

  return {
    async find(id) {
      return { status: (await state.find(id.value))?.status };
    },
    async *findAll() {
      for (const e of await state.findAll({})) yield { id: { value: e.jobId }, status: e.status };
    },
    async *findByCondition(req) {
      const p = page(req.limit, req.offset, 100, 1000);
      const entries = await state.findAll({ ...filterOf(req), ...p, descending: req.descending ?? true });
      for (const e of entries) {
        yield {
          id: { value: e.jobId },
          status: e.status,
          workerId: e.workerId,
          channel: e.channel,
          priority: e.priority,
          enqueueTime: e.enqueueTime,
          startTime: e.startTime,
          pendingTime: e.pendingTime,
          isStreamable: e.isStreamable,
          broadcastResults: e.broadcastResults,
          updatedAt: e.updatedAt,
        };
      }
    },
    async countByCondition(req) {
      const counts = await state.count(filterOf(req));
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      const grouped = req.mode === CountJobProcessingStatusMode.GROUP_BY_STATUS;
      return {
        total: BigInt(total),
        mode: req.mode,
        counts: grouped ? [...counts].map(([status, count]) => create(JobProcessingStatusCountSchema, { status, count: BigInt(count) })) : [],
      };
    },
    async cleanup(req) {
      // Job status lives in memory here and is removed when a job ends: no soft-deleted index rows to clean.
      const hours = req.retentionHoursOverride ?? 24n;
      return { deletedCount: 0n, cutoffTime: BigInt(Date.now()) - hours * HOUR_MS, message: "job status is kept in memory and removed when a job ends; nothing to clean up" };
    },
    async purgeStaleJobs(req) {
      if (req.staleThresholdHours === 0n) throw invalid("stale_threshold_hours must be > 0");
      const cutoff = BigInt(Date.now()) - req.staleThresholdHours * HOUR_MS;
      let marked = 0n;
      for (const e of await state.findAll({})) {
        const stuck = e.status === JobProcessingStatus.RUNNING || e.status === JobProcessingStatus.WAIT_RESULT || e.status === JobProcessingStatus.CANCELLING;
        if (stuck && e.updatedAt < cutoff && !sys.dispatcher?.isRunning(e.jobId)) {
          await state.remove(e.jobId);
          marked++;
        }
      }
      return { markedCount: marked, cutoffTime: cutoff, message: `removed ${marked} status entries of jobs that no process is running` };
    },
  };
}
