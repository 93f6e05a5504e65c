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
// Messages due later (sub-second delays: SQS delays have 1 s granularity) are held until their exact time.
// Received messages nobody waits for any more are released (visibility 0) after a while, so other workers get them.
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
  spillKey?: string;
}

export interface LeaserHost {
  readonly leaseMs: number;
  readonly waitSeconds: number;
  /** Receive from the channel's queue of priority `prio`: the usable messages (malformed and removed ones are dealt with). */
  receive(channel: string, prio: number, max: number, waitSeconds: number, signal: AbortSignal): Promise<{ got: Received[]; raw: number }>;
  /** Turn a received message into a lease; undefined when its visibility ran out meanwhile. */
  handOut(r: Received): Lease | undefined;
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

export class ChannelLeaser {
  private waiters: Waiter[] = [];
  private ready: Received[][] = [[], [], []];
  private held = new Map<Received, NodeJS.Timeout>();
  private inflight: (Promise<void> | undefined)[] = [undefined, undefined, undefined];
  private pumping = false;
  private wake?: () => void;
  private releaseTimer?: NodeJS.Timeout;
  private readonly stop = new AbortController();

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

  /** The next ready message (highest priority first), for a non-blocking lease. */
  takeReady(): Received | undefined {
    const r = this.ready[0].shift() ?? this.ready[1].shift() ?? this.ready[2].shift();
    this.scheduleRelease();
    return r;
  }

  /** Messages received outside the leaser (tryLease): due ones become ready, the others are held until due. */
  offer(got: Received[]): void {
    this.accept(got);
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

  private want(): number {
    return Math.min(10, this.waiters.length - this.readyCount());
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Hand ready messages to waiting loops, highest priority first, FIFO within one. */
  private serve(): void {
    while (this.waiters.length > 0) {
      const r = this.ready[0].shift() ?? this.ready[1].shift() ?? this.ready[2].shift();
      if (!r) break;
      const lease = this.host.handOut(r);
      if (!lease) continue; // its visibility ran out while it waited here: another receive will get it
      const w = this.waiters.shift()!;
      w.signal.removeEventListener("abort", w.onAbort);
      w.resolve(lease);
    }
    this.scheduleRelease();
  }

  /** Messages received for loops that stopped waiting go back after a third of the lease, unless a loop takes them. */
  private scheduleRelease(): void {
    if (this.readyCount() === 0 || this.waiters.length > 0) {
      clearTimeout(this.releaseTimer);
      this.releaseTimer = undefined;
      return;
    }
    if (this.releaseTimer) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = undefined;
      if (this.waiters.length > 0) return;
      const back = this.ready.flat();
      this.ready = [[], [], []];
      if (back.length) this.host.release(back);
    }, Math.max(100, Math.floor(this.host.leaseMs / 3)));
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
        const t = setTimeout(() => {
          this.held.delete(r);
          this.ready[r.prio].push(r);
          this.serve();
          this.poke();
        }, r.dueAt - now);
        this.held.set(r, t);
      } else this.ready[r.prio].push(r);
    }
    this.serve();
  }

  private receive(prio: number, max: number, waitSeconds: number): Promise<{ got: number; raw: number }> {
    return this.host.receive(this.channel, prio, max, waitSeconds, this.stop.signal).then(({ got, raw }) => {
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
          const { raw } = await this.receive(p, asked, this.host.waitSeconds);
          this.poke();
          if (raw >= asked || this.want() <= 0 || this.stop.signal.aborted) return;
        }
      } catch (e) {
        if (!this.stop.signal.aborted) this.failure ??= e;
      } finally {
        this.inflight[p] = undefined;
        this.poke();
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
