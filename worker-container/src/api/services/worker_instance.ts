import type { WorkerInstanceService } from "../../gen/jobworkerp/service/worker_instance_pb.js";
import { notFound } from "../../core/errors.js";
import { DEFAULT_CHANNEL } from "../../core/workers.js";
import type { System } from "../../core/system.js";
import type { ServiceImpl } from "../context.js";

export function workerInstanceService(sys: System): ServiceImpl<typeof WorkerInstanceService> {
  const alive = (i: { data?: { lastHeartbeat: bigint } }) => Date.now() - Number(i.data!.lastHeartbeat) <= sys.instanceTimeoutMs;

  return {
    async *findList(req) {
      for (const i of await sys.instances.list()) {
        if (req.channel !== undefined && !i.data!.channels.some((c) => c.name === req.channel)) continue;
        if (req.activeOnly && !alive(i)) continue;
        yield i;
      }
    },
    async count() {
      const all = await sys.instances.list();
      return { total: BigInt(all.length), active: BigInt(all.filter(alive).length) };
    },
    async find(id) {
      const i = await sys.instances.find(id.value);
      if (!i) throw notFound(`worker instance ${id.value} not found`);
      return i;
    },
    async findChannelList() {
      const live = (await sys.instances.list()).filter(alive);
      const byName = new Map<string, { total: number; instances: number }>();
      for (const i of live) {
        for (const c of i.data!.channels) {
          const e = byName.get(c.name) ?? { total: 0, instances: 0 };
          e.total += c.concurrency;
          e.instances += 1;
          byName.set(c.name, e);
        }
      }
      const counts = await sys.store.countWorkersByChannel(DEFAULT_CHANNEL);
      return {
        channels: [...byName].sort().map(([name, e]) => ({
          name,
          totalConcurrency: e.total,
          activeInstances: e.instances,
          workerCount: BigInt(counts.get(name) ?? 0),
        })),
      };
    },
  };
}
