// In-process JobState: status per job with a fencing token per claim, and uniq_key reservations.
import { JobProcessingStatus } from "../../gen/jobworkerp/data/common_pb.js";
import type { Claim, JobState, JobStatusEntry, JobStatusFilter } from "../../core/ports.js";

interface Entry extends JobStatusEntry {
  token: number;
}

export class MemoryJobState implements JobState {
  private entries = new Map<bigint, Entry>();
  private uniq = new Map<string, bigint>();
  // One counter for all jobs: a token is never reused, even after an entry is removed and re-created.
  private lastToken = 0;

  async setPending(entry: JobStatusEntry): Promise<void> {
    const prev = this.entries.get(entry.jobId);
    this.entries.set(entry.jobId, {
      ...entry,
      status: JobProcessingStatus.PENDING,
      pendingTime: entry.pendingTime ?? entry.updatedAt,
      token: prev?.token ?? 0,
    });
  }

  async claim(entry: JobStatusEntry, now: bigint): Promise<Claim | undefined> {
    let e = this.entries.get(entry.jobId);
    if (!e) this.entries.set(entry.jobId, (e = { ...entry, token: 0 }));
    if (e.status === JobProcessingStatus.CANCELLING) return undefined;
    e.token = ++this.lastToken;
    e.status = JobProcessingStatus.RUNNING;
    e.startTime = now;
    e.updatedAt = now;
    return { token: e.token };
  }

  private current(jobId: bigint, claim: Claim): Entry | undefined {
    const e = this.entries.get(jobId);
    return e && e.token === claim.token ? e : undefined;
  }

  async markWaitResult(jobId: bigint, claim: Claim): Promise<boolean> {
    const e = this.current(jobId, claim);
    if (!e) return false;
    if (e.status !== JobProcessingStatus.CANCELLING) e.status = JobProcessingStatus.WAIT_RESULT;
    return true;
  }

  async markPendingForRetry(jobId: bigint, claim: Claim, now: bigint): Promise<boolean> {
    const e = this.current(jobId, claim);
    if (!e || e.status === JobProcessingStatus.CANCELLING) return false;
    e.status = JobProcessingStatus.PENDING;
    e.pendingTime = now;
    e.updatedAt = now;
    return true;
  }

  async finish(jobId: bigint, claim: Claim): Promise<boolean> {
    if (!this.current(jobId, claim)) return false;
    this.entries.delete(jobId);
    return true;
  }

  async remove(jobId: bigint): Promise<void> {
    this.entries.delete(jobId);
  }

  async requestCancel(jobId: bigint): Promise<JobProcessingStatus | undefined> {
    const e = this.entries.get(jobId);
    if (!e) return undefined;
    const before = e.status;
    e.status = JobProcessingStatus.CANCELLING;
    return before;
  }

  async find(jobId: bigint): Promise<JobStatusEntry | undefined> {
    return this.entries.get(jobId);
  }

  private matching(f: JobStatusFilter): Entry[] {
    const now = BigInt(Date.now());
    return [...this.entries.values()].filter(
      (e) =>
        (f.status === undefined || e.status === f.status) &&
        (f.workerId === undefined || e.workerId === f.workerId) &&
        (f.channel === undefined || e.channel === f.channel) &&
        // as jobworkerp-rs: elapsed is measured from the start of running; jobs not started do not match
        (f.minElapsedTimeMs === undefined || (e.startTime !== undefined && now - e.startTime >= BigInt(f.minElapsedTimeMs))),
    );
  }

  async findAll(f: JobStatusFilter): Promise<JobStatusEntry[]> {
    const list = this.matching(f).sort((a, b) => (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
    if (f.descending) list.reverse();
    const offset = f.offset ?? 0;
    return list.slice(offset, f.limit === undefined ? undefined : offset + f.limit);
  }

  async count(f: JobStatusFilter): Promise<Map<JobProcessingStatus, number>> {
    const counts = new Map<JobProcessingStatus, number>();
    for (const e of this.matching(f)) counts.set(e.status, (counts.get(e.status) ?? 0) + 1);
    return counts;
  }

  async reserveUniqKey(workerId: bigint, key: string, jobId: bigint): Promise<boolean> {
    const k = `${workerId}:${key}`;
    const holder = this.uniq.get(k);
    if (holder !== undefined && holder !== jobId) return false;
    this.uniq.set(k, jobId);
    return true;
  }

  async releaseUniqKey(workerId: bigint, key: string, jobId: bigint): Promise<void> {
    const k = `${workerId}:${key}`;
    if (this.uniq.get(k) === jobId) this.uniq.delete(k);
  }

  async uniqKeyHolder(workerId: bigint, key: string): Promise<bigint | undefined> {
    return this.uniq.get(`${workerId}:${key}`);
  }
}
