// Weighted sub-queues: a channel split into sub-queue channels (`inference:high` weight 9, `inference:low`
// weight 3) whose jobs are leased in proportion to the weights while each has work (9:3 serves 3:1), so no
// sub-queue starves; an idle sub-queue's share goes to the others. Strict HIGH > MEDIUM > LOW priority still
// holds inside each sub-queue (the queue's tryLease). The weighting lives here, over two small JobQueue calls
// (tryLease, waitForWork), so every backend gets it without weight-specific adapter code.
import type { JobQueue, Lease } from "./ports.js";

export interface SubQueueWeight {
  /** The sub-queue's channel as workers name it, e.g. `inference:high`. */
  channel: string;
  weight: number;
}

/**
 * Smooth weighted round robin: every pick adds each candidate's weight to its credit, serves the candidate with
 * the most credit and charges it the candidates' total weight. With all members busy, weights 9 and 3 give the
 * sequence a a b a a a b a … (exactly 3:1 in every 4 picks, evenly spread). A pick whose sub-queue turns out
 * empty is undone (see `undo`), so an idle sub-queue neither earns credit it would spend in a burst later nor
 * loses its place.
 */
export class WeightedPicker {
  private readonly credit: number[];

  constructor(readonly members: readonly SubQueueWeight[]) {
    if (members.length === 0) throw new Error("a weighted channel needs at least one sub-queue");
    for (const m of members) {
      if (!Number.isInteger(m.weight) || m.weight < 1) throw new Error(`weight of sub-queue '${m.channel}' must be an integer >= 1, got ${m.weight}`);
    }
    this.credit = members.map(() => 0);
  }

  /** The next member to try among those not in `skip` (indexes), with the undo of this step; undefined when all are skipped. */
  pick(skip: ReadonlySet<number>): { index: number; undo: () => void } | undefined {
    const candidates = this.members.map((_, i) => i).filter((i) => !skip.has(i));
    if (candidates.length === 0) return undefined;
    let total = 0;
    let best = candidates[0];
    for (const i of candidates) {
      this.credit[i] += this.members[i].weight;
      total += this.members[i].weight;
      if (this.credit[i] > this.credit[best]) best = i;
    }
    this.credit[best] -= total;
    // Every change of a step is an addition, so undoing it later (after other loops picked) is exact.
    const undo = () => {
      for (const i of candidates) this.credit[i] -= this.members[i].weight;
      this.credit[best] += total;
    };
    return { index: best, undo };
  }
}

const EMPTY_HINT_MS = 20;

/**
 * Leases for all the loops of one weighted channel in one process. Each lease tries the picked sub-queue with a
 * non-blocking tryLease, the next pick on a miss, and when every sub-queue is empty the loops wait together
 * on one waitForWork over all sub-queues (one watcher per process, however many loops are idle).
 */
export class WeightedLeaser {
  private readonly picker: WeightedPicker;
  private readonly channels: string[];
  private idle?: Promise<void>;
  /**
   * Per member: until when (ms) it is taken for empty after a miss, so busy loops do not pay a round trip for an
   * idle sub-queue on every lease. Short, so a sub-queue that fills up meanwhile waits at most that long.
   */
  private readonly emptyUntil: number[];

  constructor(
    private readonly queue: Pick<JobQueue, "tryLease" | "waitForWork">,
    members: readonly SubQueueWeight[],
    /** Longest idle wait before looking again (a safety net: adapters that can watch wake up on pushes). */
    private readonly idleWaitMs = 1_000,
  ) {
    this.picker = new WeightedPicker(members);
    this.channels = members.map((m) => m.channel);
    this.emptyUntil = members.map(() => 0);
  }

  async lease(signal: AbortSignal): Promise<Lease | undefined> {
    while (!signal.aborted) {
      const now = Date.now();
      let skip = new Set(this.channels.flatMap((_, i) => (this.emptyUntil[i] > now ? [i] : [])));
      if (skip.size === this.channels.length) skip = new Set(); // all recently empty: look at every one again
      for (let p = this.picker.pick(skip); p; p = this.picker.pick(skip)) {
        const lease = await this.queue.tryLease(this.channels[p.index]);
        if (lease) return lease;
        p.undo();
        skip.add(p.index);
        this.emptyUntil[p.index] = Date.now() + EMPTY_HINT_MS;
      }
      if (signal.aborted) break;
      // The loops of a dispatcher share one stop signal, so the shared wait ends with theirs.
      this.idle ??= this.queue.waitForWork(this.channels, this.idleWaitMs, signal).finally(() => {
        this.idle = undefined;
        this.emptyUntil.fill(0); // something may have arrived anywhere
      });
      await this.idle;
    }
    return undefined;
  }
}

/** The channels to lease from for a channel with sub-queues: every sub-queue, then the bare channel itself. */
export function weightedMembers(channel: string, subQueues: readonly { name: string; weight: number }[]): SubQueueWeight[] {
  if (subQueues.length === 0) return [];
  const members = subQueues.map((s) => ({ channel: `${channel}:${s.name}`, weight: s.weight }));
  // Jobs of workers on the bare channel are served too, as one more sub-queue with the smallest weight.
  members.push({ channel, weight: Math.min(...subQueues.map((s) => s.weight)) });
  return members;
}

/**
 * The channels a process serves as listed to clients (FindChannelList, worker instances, queue metrics): each
 * configured channel, and after a weighted one its sub-queue channels with the channel's concurrency (the same
 * loops serve them all).
 */
export function servedChannels(channels: readonly { name: string; concurrency: number; subQueues?: SubQueueWeight[] }[]): { name: string; concurrency: number }[] {
  return channels.flatMap((c) => [
    { name: c.name, concurrency: c.concurrency },
    ...(c.subQueues ?? []).filter((m) => m.channel !== c.name).map((m) => ({ name: m.channel, concurrency: c.concurrency })),
  ]);
}
