// Content deduplication (WorkerData.dedup): a job whose `using` and args equal those of a pending or running job
// of the same worker is rejected (REJECT) or answered with that job (COALESCE). The content key is reserved with
// JobState's uniq_key reservations (atomic on every backend) from enqueue until the job finishes.
import { createHash } from "node:crypto";
import type { Job } from "../gen/jobworkerp/data/job_pb.js";
import { AppError } from "./errors.js";
import type { JobState, JobStatusEntry } from "./ports.js";

/** The reservation key of a job's content. The `dedup:` prefix keeps it apart from jobworkerp uniq_keys in practice. */
export function contentKey(job: Job): string {
  const d = job.data!;
  const h = createHash("sha256").update(d.using ?? "").update("\0").update(d.args).digest("base64url");
  return `dedup:${h}`;
}

/**
 * Reserve the content key for `jobId`, whose PENDING entry must already be recorded (so a holder without an entry
 * is known to be gone, never one still enqueueing). Returns undefined when reserved, else the entry of the job
 * that holds it.
 */
export async function reserveContent(state: JobState, workerId: bigint, key: string, jobId: bigint): Promise<JobStatusEntry | undefined> {
  for (let attempt = 0; attempt < 8; attempt++) {
    if (await state.reserveUniqKey(workerId, key, jobId)) return undefined;
    const holder = await state.uniqKeyHolder(workerId, key);
    if (holder === undefined || holder === jobId) continue; // released meanwhile: try again
    const entry = await state.find(holder);
    if (entry) return entry;
    // The holder is neither pending nor running (it finished a moment ago, or the worker stopped deduplicating
    // while it ran, so nothing released its key): free the key, only if that job still holds it.
    await state.releaseUniqKey(workerId, key, holder);
  }
  throw new AppError("ABORTED", "the job's content key kept changing hands; try again");
}
