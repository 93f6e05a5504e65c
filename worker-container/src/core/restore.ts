// Putting back durable one-shot jobs that no process is handling (their queue entry was lost, e.g. Redis was
// flushed or restarted empty): JobRestoreService and STORAGE_RESTORE_AT_STARTUP.
import type { Job } from "../gen/jobworkerp/data/job_pb.js";
import type { System } from "./system.js";

/** Grabs ending within this are a clock's short hold while it queues a job (core/clock.ts), not a lost queue entry. */
const LIVE_GRAB_MS = 60_000;

export async function restorableJobs(sys: Pick<System, "store" | "state" | "workers">, includeGrabbed: boolean, limit: number): Promise<Job[]> {
  const out: Job[] = [];
  for (const job of await sys.store.findJobs(100_000, 0)) {
    if (out.length >= limit) break;
    const w = await sys.workers.find(job.data!.workerId!.value);
    if (!w || w.data!.periodicInterval > 0) continue; // periodic rows are the clock's own
    if (await sys.state.find(job.id!.value)) continue; // queued or running somewhere
    const grab = job.data!.grabbedUntilTime ?? 0n;
    // a short grab is a live clock queueing the job right now (it grabs for good once queued): not lost, leave it
    if (grab > 0n && grab < BigInt(Date.now() + LIVE_GRAB_MS)) continue;
    if (!includeGrabbed && grab) continue;
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
