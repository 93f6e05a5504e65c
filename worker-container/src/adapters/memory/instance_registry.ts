// In-process worker instance registry (embedded mode has exactly one instance: this process).
import type { WorkerInstance } from "../../gen/jobworkerp/data/worker_instance_pb.js";
import type { InstanceRegistry } from "../../core/ports.js";

export class MemoryInstanceRegistry implements InstanceRegistry {
  private instances = new Map<bigint, WorkerInstance>();

  async heartbeat(instance: WorkerInstance): Promise<void> {
    this.instances.set(instance.id!.value, instance);
  }
  async list(): Promise<WorkerInstance[]> {
    return [...this.instances.values()];
  }
  async find(id: bigint): Promise<WorkerInstance | undefined> {
    return this.instances.get(id);
  }
  async remove(id: bigint): Promise<void> {
    this.instances.delete(id);
  }
}
