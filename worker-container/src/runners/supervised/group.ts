// The children of one worker (with one set of settings) in this process.
//
// Two ways to hold slots:
//  - pinned (use_static): the core's static pool sizes itself by the channel's concurrency and creates one
//    instance per slot; each instance pins one slot for its life and runs its jobs there.
//  - shared (no use_static): every job takes an idle slot and a new slot is added only when all are busy, so the
//    group grows to the number of jobs this worker ran at once — at most the channel's concurrency — and the
//    children stay warm between jobs. They end when the worker changes, is deleted or released (`retire`), or
//    at shutdown.
// Either way a slot runs one job at a time, so a child's answer always belongs to the job it was sent.
import type { SupervisedRunnerSettings } from "../../gen/jobworkerp/runner/supervised_runner_pb.js";
import type { VenvCache } from "../python_command/venv.js";
import { SupervisedChild, type Answer, type ChildEvents, type SlotStatus } from "./child.js";
import { resolveLaunch, supervision, type Launch } from "./settings.js";

export interface WorkerRef {
  id: bigint;
  name: string;
}

export interface GroupEvents {
  notable(): void;
  log(level: "info" | "warn", fields: Record<string, unknown>, msg: string): void;
  /** The group is retired and has no slot left. */
  empty(group: ChildGroup): void;
}

const PICK_ORDER = { READY: 0, STARTING: 1, RESTARTING: 2, STOPPED: 3, BUSY: 4 } as const;

export class ChildGroup {
  private slots = new Map<number, SupervisedChild>();
  private pinned = new Set<SupervisedChild>();
  private busy = new Set<SupervisedChild>();
  private launching?: Promise<Launch>;
  private retired = false;
  private readonly childEvents: ChildEvents;

  constructor(
    readonly worker: WorkerRef,
    private readonly settings: SupervisedRunnerSettings,
    private readonly venvs: VenvCache,
    private readonly events: GroupEvents,
  ) {
    const who = { worker: worker.name, workerId: worker.id.toString() };
    this.childEvents = {
      notable: () => events.notable(),
      log: (level, fields, msg) => events.log(level, { ...who, ...fields }, msg),
    };
  }

  /** What to spawn, resolved once (a Python venv is built at most once); a failure is tried again next time. */
  readonly launch = (): Promise<Launch> => {
    if (!this.launching) {
      const p = resolveLaunch(this.settings, this.venvs);
      this.launching = p;
      p.catch(() => {
        if (this.launching === p) this.launching = undefined;
      });
    }
    return this.launching;
  };

  /** A slot for a static instance, started now (WorkerService.Load and the first job find it warming up). */
  pin(): SupervisedChild {
    const c = this.addSlot();
    this.pinned.add(c);
    c.ensureStarted();
    return c;
  }

  async unpin(c: SupervisedChild): Promise<void> {
    this.pinned.delete(c);
    await this.remove(c);
  }

  /** Starts one child ahead of the first job (shared mode). */
  warm(): void {
    if (!this.retired && this.slots.size === 0) this.addSlot().ensureStarted();
  }

  /** Runs a job on an idle shared slot (preferring a ready child), adding a slot when every one is busy. */
  async runShared(jobId: string, line: string, signal: AbortSignal): Promise<Answer> {
    const free = [...this.slots.values()].filter((c) => !this.busy.has(c) && !this.pinned.has(c));
    free.sort((a, b) => PICK_ORDER[a.state] - PICK_ORDER[b.state] || a.slot - b.slot);
    const c = free[0] ?? this.addSlot();
    this.busy.add(c);
    try {
      return await c.run(jobId, line, signal);
    } finally {
      this.busy.delete(c);
      if (this.retired) void this.remove(c);
    }
  }

  /** The worker changed or went away: idle shared children stop now, busy ones after their job; pinned ones when their instance closes. */
  retire(): void {
    this.retired = true;
    for (const c of [...this.slots.values()]) if (!this.busy.has(c) && !this.pinned.has(c)) void this.remove(c);
    this.checkEmpty();
  }

  async stopAll(): Promise<void> {
    this.retired = true;
    await Promise.all([...this.slots.values()].map((c) => this.remove(c)));
  }

  status(): SlotStatus[] {
    return [...this.slots.values()].map((c) => c.status());
  }

  private addSlot(): SupervisedChild {
    let n = 0;
    while (this.slots.has(n)) n++;
    const c = new SupervisedChild(n, this.launch, supervision(this.settings), this.childEvents);
    this.slots.set(n, c);
    return c;
  }

  private async remove(c: SupervisedChild): Promise<void> {
    if (this.slots.get(c.slot) !== c) return;
    this.slots.delete(c.slot);
    this.events.notable();
    try {
      await c.stop();
    } finally {
      this.checkEmpty();
    }
  }

  private checkEmpty(): void {
    if (this.retired && this.slots.size === 0) this.events.empty(this);
  }
}
