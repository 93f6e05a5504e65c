// One leaser per channel and process: the dispatcher loops waiting for a job of the channel queue here, and the
// leaser receives for all of them (ReceiveMessage up to 10 at a time), only as many messages as loops wait.
//
// Strict priority over three SQS queues without tripling the calls: while loops wait, the leaser short-polls the
// first queue in order HIGH, MEDIUM, LOW that is not being watched, and starts again from HIGH after every answer.
// A queue whose short poll comes back short is watched: one long poll stays outstanding on it until messages
// arrive or the wait ends (then it is short-polled again when loops wait). When every queue is watched the
// leaser sleeps until one reports. So an idle channel costs 3 calls per wait period, a job arriving at an idle
// worker one receive (the long poll that returns it) plus one short poll, a backlog one receive per 10 jobs; a
// HIGH job arriving during a MEDIUM backlog is returned by HIGH's outstanding long poll at once and served first.
//
// Strict order across messages already received: a message of one priority is handed out only while every higher
// queue is known empty, i.e. its last answer came back short and a long poll is (about to be) outstanding on it.
// Long polls left outstanding while every loop was busy may return a LOW job before the HIGH jobs queued after
// it; that LOW job then waits in `ready` until HIGH is short-polled and comes back empty.
//
// Messages due later (sub-second delays: SQS delays have 1 s granularity) are held until their exact time, and
// checked again for a removal shortly before (a Delete of a periodic job while its next occurrences are held).
// Received messages nobody waits for any more are released (visibility 0) after a while, so other workers get them.
// Weighted sub-queues lease through `tryLease` (non-blocking) and wait for arrivals with `onArrival`.
import type { Lease } from "../../core/ports.js";

export interface Received {
  lease: Lease;
  url: string;
  handle: string;
  /** 0 HIGH, 1 MEDIUM, 2 LOW. */
  prio: number;
  /** Epoch ms when it was received (SQS caps the visibility 12 h from there). */
  receivedAt: number;
  /** Epoch ms until which the message is invisible to others. */
  visibleUntil: number;
  /** Epoch ms from which the job may run. */
  dueAt: number;
  /** Epoch ms since when it waits in the leaser's ready list. */
  readyAt?: number;
  spillKey?: string;
}

export interface LeaserHost {
  readonly leaseMs: number;
  readonly waitSeconds: number;
  /** Receive from the channel's queue of priority `prio`: the usable messages (malformed and removed ones are dealt with). */
  receive(channel: string, prio: number, max: number, waitSeconds: number, signal: AbortSignal): Promise<{ got: Received[]; raw: number }>;
  /** Turn a received message into a lease; undefined when its visibility ran out meanwhile. */
  handOut(r: Received): Lease | undefined;
  /**
   * Whether a message held for its due time is still to run: false when its job was removed meanwhile (the
   * message is then dropped). Never throws (a failed check says true: the claim is the last guard).
   */
  stillWanted(r: Received): Promise<boolean>;
  /** Give messages back to the queue now (visibility 0). */
  release(rs: Received[]): void;
  onError(e: unknown, context: string): void;
}

interface Waiter {
  resolve: (l: Lease | undefined) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

const MAX_BACKOFF_MS = 30_000;
/** A message held longer than this for its due time is checked for removal again this long before it is due. */
const RECHECK_AHEAD_MS = 100;
/** Watches armed by tryLease stay armed this long after its last call (the weighted leaser's idle wait is 1 s). */
const TRY_WATCH_MS = 5_000;

export class ChannelLeaser {
  private waiters: Waiter[] = [];
  private ready: Received[][] = [[], [], []];
  private held = new Map<Received, NodeJS.Timeout>();
  private inflight: (Promise<void> | undefined)[] = [undefined, undefined, undefined];
  /** Per queue: its last answer came back short and it is watched since, so nothing waits in it now. */
  private knownEmpty = [false, false, false];
  private pumping = false;
  private wake?: () => void;
  private releaseTimer?: NodeJS.Timeout;
  private readonly stop = new AbortController();
  private readonly arrivals = new Set<() => void>();
  /** When tryLease was last called (and its last 10 calls, a ring), and its short poll per queue (shared by the calls of one turn). */
  private lastTry = 0;
  private readonly tries: number[] = Array(10).fill(0);
  private tryAt = 0;
  private polls: ({ callers: number; sent: boolean; done: Promise<void> } | undefined)[] = [undefined, undefined, undefined];

  constructor(
    private readonly host: LeaserHost,
    readonly channel: string,
  ) {}

  lease(signal: AbortSignal): Promise<Lease | undefined> {
    if (signal.aborted || this.stop.signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const w: Waiter = {
        resolve,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve(undefined);
          this.poke();
        },
      };
      signal.addEventListener("abort", w.onAbort, { once: true });
      this.waiters.push(w);
      this.serve();
      void this.pump();
    });
  }

  /** Stop polling; received messages go back to the queue. */
  close(): void {
    this.stop.abort();
    for (const w of this.waiters.splice(0)) {
      w.signal.removeEventListener("abort", w.onAbort);
      w.resolve(undefined);
    }
    for (const t of this.held.values()) clearTimeout(t);
    const back = [...this.ready.flat(), ...this.held.keys()];
    this.ready = [[], [], []];
    this.held.clear();
    clearTimeout(this.releaseTimer);
    if (back.length) this.host.release(back);
    this.poke();
  }

  /**
   * Non-blocking lease (weighted sub-queues): the best ready message if no higher queue may hold a job, else
   * short polls of the queues that may, in priority order. The calls of one event-loop turn share one poll per
   * queue, which asks for one message per call; a lone caller's poll asks for as many as tryLease was called in the
   * last quarter of the lease (a loop working through a backlog gets a batch per receive, which it takes before
   * the leftovers would go back: messages nobody takes return to the queue and count as deliveries towards the
   * DLQ). A queue that came back short is watched by a long poll while tryLease calls keep coming, so an empty
   * queue costs no call per lease and an arrival wakes `onArrival` listeners.
   */
  async tryLease(): Promise<Lease | undefined> {
    this.lastTry = Date.now();
    this.tries[this.tryAt++ % this.tries.length] = this.lastTry;
    for (let round = 0; round < 6 && !this.stop.signal.aborted; round++) {
      const lease = this.takeServable();
      if (lease) return lease;
      const top = this.ready.findIndex((q) => q.length > 0);
      const q = this.unknownAbove(top < 0 ? 3 : top)[0];
      if (q === undefined) return undefined; // every queue that could outrank what is ready is known empty
      await this.shortPoll(q);
    }
    return undefined;
  }

  /** One short poll of queue `q` for the tryLease calls of this event-loop turn (later callers await it too). */
  private shortPoll(q: number): Promise<void> {
    const open = this.polls[q];
    if (open) {
      if (!open.sent) open.callers++;
      return open.done;
    }
    const poll = { callers: 1, sent: false, done: Promise.resolve() };
    this.polls[q] = poll;
    poll.done = new Promise<void>((r) => setImmediate(r))
      .then(() => {
        poll.sent = true;
        const asked = Math.min(10, poll.callers > 1 ? poll.callers : this.recentTries());
        return this.receive(q, asked, 0).then(({ raw }) => void (raw < asked && this.watch(q)));
      })
      .finally(() => (this.polls[q] = undefined));
    return poll.done;
  }

  /** Call `fn` when messages arrive (received, or held ones coming due); returns the unsubscribe. */
  onArrival(fn: () => void): () => void {
    this.arrivals.add(fn);
    return () => this.arrivals.delete(fn);
  }

  private notifyArrival(): void {
    for (const fn of [...this.arrivals]) fn();
  }

  /** tryLease calls in the last quarter of the lease (at least 1): what a lone caller's poll asks for. */
  private recentTries(): number {
    const since = Date.now() - this.host.leaseMs / 4;
    return Math.max(1, this.tries.filter((t) => t > since).length);
  }

  /** tryLease was called lately: its watches stay armed although no loop waits in `lease`. */
  private tryingLately(): boolean {
    return this.lastTry > 0 && Date.now() - this.lastTry < TRY_WATCH_MS;
  }

  /** Messages wait here for a lease (a tryLease may take one, or poll the queues above it first). */
  hasReady(): boolean {
    return this.readyCount() > 0;
  }

  /** When the earliest held message comes due (Infinity when none is held). */
  nextDue(): number {
    let t = Infinity;
    for (const r of this.held.keys()) t = Math.min(t, r.dueAt);
    return t;
  }

  private readyCount(): number {
    return this.ready[0].length + this.ready[1].length + this.ready[2].length;
  }

  /** The queues above priority `p` that may hold a job now. */
  private unknownAbove(p: number): number[] {
    const out: number[] = [];
    for (let q = 0; q < p; q++) if (!this.knownEmpty[q] && this.ready[q].length === 0) out.push(q);
    return out;
  }

  /** Ready messages that may be handed out now: a higher queue that may hold a job must be polled first. */
  private servableCount(): number {
    let n = 0;
    for (let p = 0; p < 3; p++) {
      if (this.unknownAbove(p).length > 0) break;
      n += this.ready[p].length;
    }
    return n;
  }

  private want(): number {
    return Math.min(10, this.waiters.length - this.servableCount());
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** The first ready message of the highest priority as a lease, while no higher queue may hold a job. */
  private takeServable(): Lease | undefined {
    for (;;) {
      const p = this.ready.findIndex((q) => q.length > 0);
      if (p < 0 || this.unknownAbove(p).length > 0) return undefined;
      const lease = this.host.handOut(this.ready[p].shift()!);
      // undefined: its visibility ran out while it waited here: another receive will get it
      if (lease) {
        this.scheduleRelease();
        return lease;
      }
    }
  }

  /** Hand ready messages to waiting loops, highest priority first, FIFO within one, while no higher queue may hold a job. */
  private serve(): void {
    while (this.waiters.length > 0) {
      const lease = this.takeServable();
      if (!lease) break;
      const w = this.waiters.shift()!;
      w.signal.removeEventListener("abort", w.onAbort);
      w.resolve(lease);
    }
    this.scheduleRelease();
  }

  private toReady(r: Received): void {
    r.readyAt = Date.now();
    this.ready[r.prio].push(r);
  }

  /**
   * Ready messages nobody takes go back a third of the lease after they became ready (loops that stopped waiting,
   * a tryLease batch not used up), so other workers get them.
   */
  private scheduleRelease(): void {
    clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
    if (this.readyCount() === 0 || this.waiters.length > 0) return;
    const keepMs = Math.max(100, Math.floor(this.host.leaseMs / 3));
    let oldest = Infinity;
    for (const q of this.ready) if (q.length) oldest = Math.min(oldest, q[0].readyAt ?? 0);
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = undefined;
      if (this.waiters.length > 0) return;
      const cutoff = Date.now() - keepMs;
      const back: Received[] = [];
      for (const q of this.ready) while (q.length && (q[0].readyAt ?? 0) <= cutoff) back.push(q.shift()!);
      if (back.length) this.host.release(back);
      this.scheduleRelease();
    }, Math.max(0, oldest + keepMs - Date.now()));
    this.releaseTimer.unref?.();
  }

  private accept(got: Received[]): void {
    const now = Date.now();
    for (const r of got) {
      if (this.stop.signal.aborted) {
        this.host.release([r]);
        continue;
      }
      if (r.dueAt > now) {
        const due = () => {
          this.held.delete(r);
          this.toReady(r);
          this.serve();
          this.poke();
          void this.pump(); // a higher queue may have to be polled before it goes
          this.notifyArrival();
        };
        // held a while: its job may be deleted meanwhile (a periodic job's next occurrences), so look again
        // shortly before it is due (a Delete in the last RECHECK_AHEAD_MS still lets it run once)
        const recheckIn = r.dueAt - RECHECK_AHEAD_MS - now;
        if (recheckIn <= 0) this.held.set(r, setTimeout(due, r.dueAt - now));
        else {
          const recheck = async () => {
            const wanted = await this.host.stillWanted(r);
            if (!this.held.has(r) || this.stop.signal.aborted) return; // closed meanwhile
            if (!wanted) this.held.delete(r);
            else this.held.set(r, setTimeout(due, Math.max(0, r.dueAt - Date.now())));
          };
          this.held.set(r, setTimeout(() => void recheck(), recheckIn));
        }
      } else this.toReady(r);
    }
    this.serve();
    if (got.length) this.notifyArrival();
  }

  /** `watched`: a long poll of a watch, which keeps the queue watched after a short answer. */
  private receive(prio: number, max: number, waitSeconds: number, watched = false): Promise<{ got: number; raw: number }> {
    return this.host.receive(this.channel, prio, max, waitSeconds, this.stop.signal).then(({ got, raw }) => {
      // a short answer: the queue is empty now, and a watch is outstanding on it or armed right after
      // (a short poll's short answer starts one, see pump); a full one may leave more behind
      this.knownEmpty[prio] = raw < max && (watched || waitSeconds === 0) && !this.stop.signal.aborted;
      this.accept(got);
      return { got: got.length, raw };
    });
  }

  /**
   * Watch a queue that came back short: a long poll stays outstanding until messages arrive or the wait ends, and
   * is armed again at once while loops wait and the queue keeps coming back short. A full answer ends the watch
   * (there may be more: the next round short-polls the queue in its turn).
   */
  private watch(p: number): void {
    if (this.inflight[p] || this.stop.signal.aborted) return;
    this.inflight[p] = (async () => {
      try {
        for (;;) {
          const asked = Math.max(1, this.want());
          const { raw } = await this.receive(p, asked, this.host.waitSeconds, true);
          this.poke();
          if (raw >= asked || (this.want() <= 0 && !this.tryingLately()) || this.stop.signal.aborted) return;
        }
      } catch (e) {
        if (!this.stop.signal.aborted) this.failure ??= e;
      } finally {
        this.inflight[p] = undefined;
        this.knownEmpty[p] = false; // nothing watches it any more
        this.poke();
        if (this.waiters.length > 0) void this.pump();
      }
    })();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    let backoff = 0;
    try {
      while (!this.stop.signal.aborted && this.want() > 0) {
        try {
          // one round: the first queue in priority order that is not watched is short-polled; after any answer the
          // round starts again from HIGH, so what a round hands out is always the highest priority available
          let progressed = false;
          for (let p = 0; p < 3 && this.want() > 0; p++) {
            if (this.inflight[p]) continue;
            const asked = this.want();
            const { raw } = await this.receive(p, asked, 0);
            if (raw < asked) this.watch(p);
            if (raw > 0) {
              progressed = true;
              break;
            }
          }
          if (!progressed && this.want() > 0 && this.inflight.every((x) => x !== undefined)) {
            const woken = new Promise<void>((r) => (this.wake = r));
            await woken;
          }
          if (this.failure) {
            const e = this.failure;
            this.failure = undefined;
            throw e;
          }
          backoff = 0;
        } catch (e) {
          if (this.stop.signal.aborted) break;
          this.host.onError(e, `receiving jobs of channel '${this.channel}'`);
          backoff = Math.min(MAX_BACKOFF_MS, backoff ? backoff * 2 : 1000);
          await new Promise<void>((r) => {
            const t = setTimeout(r, backoff);
            this.stop.signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
          });
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private failure?: unknown;
}
