// Runner instances for jobs: a fresh instance per job, or for use_static workers a fixed pool per worker
// (sized by its channel's concurrency) whose instances are reused, one job at a time each.
import type { Worker } from "../gen/jobworkerp/data/worker_pb.js";
import type { RunnerDefinition, RunnerInstance } from "../runners/runner.js";

export interface Borrowed {
  instance: RunnerInstance;
  /** Give the instance back (static) or close it (per job). `broken` discards a static instance. */
  release(broken?: boolean): Promise<void>;
}

class Pool {
  idle: RunnerInstance[] = [];
  created = 0;
  waiters: Array<(i: RunnerInstance | undefined) => void> = [];
  dropped = false;
  constructor(
    readonly size: number,
    /** The definition the instances came from: a reloaded dynamic runner (e.g. refreshed MCP server) gets a new pool. */
    readonly def: RunnerDefinition,
  ) {}
}

export class RunnerInstances {
  private pools = new Map<bigint, Pool>();

  async acquire(worker: Worker, def: RunnerDefinition, poolSize: number): Promise<Borrowed> {
    const settings = worker.data!.runnerSettings;
    const of = { id: worker.id!.value, name: worker.data!.name };
    if (!worker.data!.useStatic) {
      const instance = await def.create(settings, { useStatic: false, worker: of });
      return { instance, release: async () => void (await instance.close?.()) };
    }
    const id = worker.id!.value;
    let pool = this.pools.get(id);
    if (pool && pool.def !== def) {
      void this.drop(id); // leaves the map at once; its idle instances close in the background
      pool = undefined;
    }
    if (!pool) this.pools.set(id, (pool = new Pool(Math.max(1, poolSize), def)));
    const p = pool;
    let instance = p.idle.pop();
    if (!instance) {
      if (p.created < p.size) {
        p.created++;
        try {
          instance = await def.create(settings, { useStatic: true, worker: of });
        } catch (e) {
          p.created--;
          throw e;
        }
      } else {
        instance = await new Promise<RunnerInstance | undefined>((resolve) => p.waiters.push(resolve));
        if (!instance) return this.acquire(worker, def, poolSize); // pool dropped while waiting
      }
    }
    const got = instance;
    return {
      instance: got,
      release: async (broken = false) => {
        if (p.dropped || broken) {
          p.created--;
          await got.close?.();
          if (!p.dropped) p.waiters.shift()?.(undefined);
          return;
        }
        const next = p.waiters.shift();
        if (next) next(got);
        else p.idle.push(got);
      },
    };
  }

  /** Drop a worker's static instances (ReleaseStaticWorker, worker update/delete). Busy ones close on release. */
  async drop(workerId: bigint): Promise<boolean> {
    const p = this.pools.get(workerId);
    if (!p) return false;
    this.pools.delete(workerId);
    p.dropped = true;
    for (const w of p.waiters.splice(0)) w(undefined);
    await Promise.all(p.idle.splice(0).map((i) => i.close?.()));
    return true;
  }

  /** Drop the static pools built from a runner (a dynamic runner deleted or refreshed). */
  async dropRunner(runnerId: bigint): Promise<void> {
    const ids = [...this.pools].filter(([, p]) => p.def.id === runnerId).map(([id]) => id);
    await Promise.all(ids.map((id) => this.drop(id)));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.pools.keys()].map((id) => this.drop(id)));
  }
}
