import type { JobRestoreService } from "../../gen/jobworkerp/service/job_pb.js";
import { restorableJobs, restoreJobs } from "../../core/restore.js";
import type { System } from "../../core/system.js";
import type { ServiceImpl } from "../context.js";
import { page } from "./paging.js";

export function jobRestoreService(sys: System): ServiceImpl<typeof JobRestoreService> {
  return {
    async restore(req) {
      const p = page(req.limit, 0, 100_000, 100_000);
      await restoreJobs(sys, req.includeGrabbed ?? true, p.limit);
      return { isSuccess: true };
    },
    async *findAll(req) {
      const p = page(req.limit, 0, 100_000, 100_000);
      yield* await restorableJobs(sys, req.includeGrabbed ?? false, p.limit);
    },
  };
}
