// Putting back durable one-shot jobs that no process is handling (their queue entry was lost, e.g. Redis was
// flushed or restarted empty): JobRestoreService and STORAGE_RESTORE_AT_STARTUP.
import type { Job } from "../gen/jobworkerp/data/job_pb.js";
import type { System } from "./system.js";

export async function restorableJobs(sys: Pick<System, "store" | "state" | "workers">, includeGrabbed: boolean, limit: number): Promise<Job[]> {
  const out: Job[] = [];
  for (const job of await sys.store.findJobs(100_000, 0)) {
    if (out.length >= limit) break;
    const w = await sys.workers.find(job.data!.workerId!.value);
    if (!w || w.data!.periodicInterval > 0) continue; // periodic rows are the clock's own
    if (await sys.state.find(job.id!.value)) continue; // queued or running somewhere
    if (!includeGrabbed && job.data!.grabbedUntilTime) continue;
    out.push(job);
  }
  return out;
}

/** Release the grabs of restorable jobs so the clock queues them again; returns how many. */
export async function restoreJobs(sys: Pick<System, "store" | "state" | "workers" | "clock">, includeGrabbed: boolean, limit: number): Promise<number> {
  const jobs = await restorableJobs(sys, includeGrabbed, limit);
  for (const job of jobs) await sys.store.grabJob(job.id!.value, job.data!.grabbedUntilTime, 0n);
  sys.clock.wake();
  return jobs.length;
}
