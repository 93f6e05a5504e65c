// The in-process clock: moves due durable jobs (scheduled, periodic, retries of durable jobs, DB_ONLY)
// from the Store into the JobQueue with their exact remaining delay, and re-arms periodic workers.
// A job is grabbed (Store.grabDueJobs: SKIP LOCKED or a compare-and-set on grabbed_until_time) before it is
// queued, so two clocks never queue the same occurrence; a grab that outlives its holder expires after
// `grabLeaseMs`.
import { clone } from "@bufbuild/protobuf";
import { JobSchema, type Job } from "../gen/jobworkerp/data/job_pb.js";
import { statusEntry } from "./job_front.js";
import type { JobQueue, JobState, LeaderLock, Store } from "./ports.js";
import { channelOf, type WorkerDefinitions } from "./workers.js";

const PERIODIC_GRAB_MS = 5_000;

export interface ClockConfig {
  /** How often the Store is polled (JOB_QUEUE_FETCH_INTERVAL). */
  fetchIntervalMs: number;
  /** Jobs due within this window are queued now with a delay (>= fetchIntervalMs keeps timing exact). */
  lookaheadMs: number;
  /** How long a grab holds (embedded mode: effectively forever; grabs are released at startup). */
  grabLeaseMs: number;
}

/** Next run of a periodic job after `runAfter`, skipping missed slots (no catch-up bursts). */
export function nextPeriodicRun(runAfter: bigint, interval: bigint, now: bigint): bigint {
  const next = runAfter + interval;
  if (next > now) return next;
  return now + interval - ((now - runAfter) % interval);
}

export class Clock {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = true;

  constructor(
    private readonly deps: {
      store: Store;
      queue: JobQueue;
      state: JobState;
      workers: Pick<WorkerDefinitions, "find">;
      /** Told the channel of every job it queues (AWS: the scale-from-zero nudge). */
      onQueued?: (channel: string) => void;
    },
    private readonly config: ClockConfig,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** Start polling (only the leading process polls; any process may dispatch a given job). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), this.config.fetchIntervalMs);
    this.wake();
  }

  /** Run a pass now (coalesced with one already running). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.passes().finally(() => (this.running = undefined));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  get polling(): boolean {
    return !this.stopped;
  }

  private async passes(): Promise<void> {
    do {
      this.again = false;
      try {
        // Re-query while jobs were moved: a periodic job may have another occurrence inside the window.
        for (let i = 0; i < 20 && (await this.pass()) > 0; i++);
      } catch (e) {
        this.onError(e);
      }
    } while (this.again && !this.stopped);
  }

  /**
   * One complete pass at `nowMs` over the jobs due within `horizonMs`, repeated until nothing is left in the
   * window (a periodic job has many occurrences in it). The dispatch Lambda calls it once per scheduler firing
   * with a horizon a little longer than the firing interval; `nowMs` is injectable for tests. Returns how many
   * jobs (occurrences) were queued.
   */
  async tick(nowMs: number, horizonMs: number, maxPasses = 10_000): Promise<number> {
    let queued = 0;
    for (let i = 0; i < maxPasses; i++) {
      const moved = await this.pass(nowMs, horizonMs);
      if (moved === 0) break;
      queued += moved;
    }
    return queued;
  }

  private async pass(now = Date.now(), lookaheadMs = this.config.lookaheadMs): Promise<number> {
    // Grabbed for the short periodic hold; dispatch lengthens a one-shot job's grab.
    const started = Date.now();
    const due = await this.deps.store.grabDueJobs(BigInt(now + lookaheadMs), BigInt(now), 500, BigInt(now + PERIODIC_GRAB_MS));
    let moved = 0;
    for (const job of due) if (await this.dispatch(job, now, true, started)) moved++;
    return moved;
  }

  /**
   * Queue one durable job now if it is due within the look-ahead (used by the front right after enqueue).
   * `recorded`: the caller has just recorded the job PENDING in job state (one write less before it is queued).
   */
  async dispatchIfDue(job: Job, recorded = false): Promise<boolean> {
    const now = Date.now();
    if (job.data!.runAfterTime > BigInt(now + this.config.lookaheadMs)) return false;
    return this.dispatch(job, now, false, now, recorded);
  }

  /**
   * `grabbed`: the row is already held for PERIODIC_GRAB_MS (grabDueJobs), with that as its grabbedUntilTime.
   * `started`: the real time at which `nowMs` was taken; what passed since (the grab, job-state writes: tens of
   * ms on a remote store) is taken off each job's delay, so it is queued for its exact time.
   * `recorded`: job state has its PENDING entry already (the front wrote it).
   */
  private async dispatch(job: Job, nowMs: number, grabbed = false, started = Date.now(), recorded = false): Promise<boolean> {
    const { store, queue, state, workers } = this.deps;
    const d = job.data!;
    const id = job.id!.value;
    const worker = await workers.find(d.workerId!.value);
    if (!worker) {
      await store.deleteJob(id); // its worker is gone
      return false;
    }
    const now = BigInt(nowMs);
    const interval = BigInt(worker.data!.periodicInterval);
    // Every row is grabbed briefly first (grabDueJobs did so already). A periodic row is re-armed right after, so
    // the short grab suffices and lets another clock take over the schedule if this process dies in between; a
    // one-shot job is grabbed for good (while it is queued or runs) only once it is queued: a process dying before
    // that leaves the short grab, which ends, and the job is queued again (run twice at worst, never lost).
    const original = d.grabbedUntilTime;
    const shortGrab = grabbed ? original : now + BigInt(PERIODIC_GRAB_MS);
    if (!grabbed && !(await store.grabJob(id, original, shortGrab!))) return false;
    const grabUntil = now + BigInt(this.config.grabLeaseMs);
    const channel = channelOf(worker.data!);
    const delay = () => Math.max(0, Number(d.runAfterTime - now) - (Date.now() - started));
    if (interval > 0n) {
      const occurrence = clone(JobSchema, job);
      occurrence.data!.grabbedUntilTime = undefined;
      if (!recorded) await state.setPending(statusEntry(occurrence, worker, now));
      await queue.push({ job: occurrence, channel, durable: true }, delay());
      const next = clone(JobSchema, job);
      next.data!.runAfterTime = nextPeriodicRun(d.runAfterTime, interval, now);
      next.data!.grabbedUntilTime = undefined;
      await store.updateJob(next);
    } else {
      job.data!.grabbedUntilTime = grabUntil; // what the row will hold (a durable retry writes the row back from it)
      try {
        if (!recorded) await state.setPending(statusEntry(job, worker, now));
        await queue.push({ job, channel, durable: true }, delay());
      } catch (e) {
        // not queued: hand the grab back (a later pass retries), or the row would stay grabbed and never run
        if (shortGrab !== original) await store.grabJob(id, shortGrab, original ?? 0n).catch(() => undefined);
        throw e;
      }
      // false: the job ran and finished (or was retried) meanwhile and the row changed; nothing to hold then
      await store.grabJob(id, shortGrab, grabUntil);
    }
    this.deps.onQueued?.(channel);
    return true;
  }
}

/**
 * Runs the clock only while this process holds the leader lock, so exactly one process polls the store;
 * another takes over within about one TTL when the leader dies.
 */
export class ClockLeadership {
  private timer?: NodeJS.Timeout;
  private leading = false;

  constructor(
    private readonly clock: Clock,
    private readonly lock: LeaderLock,
    private readonly ttlMs: number,
    private readonly onError: (e: unknown) => void,
  ) {}

  start(): void {
    const tick = async () => {
      try {
        const held = this.leading ? await this.lock.renew(this.ttlMs) : await this.lock.acquire(this.ttlMs);
        if (held && !this.leading) this.clock.start();
        if (!held && this.leading) await this.clock.stop();
        this.leading = held;
      } catch (e) {
        this.onError(e);
      }
    };
    void tick();
    this.timer = setInterval(() => void tick(), Math.max(50, Math.floor(this.ttlMs / 3)));
  }

  get isLeader(): boolean {
    return this.leading;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.clock.stop();
    if (this.leading) await this.lock.release();
    this.leading = false;
  }
}
