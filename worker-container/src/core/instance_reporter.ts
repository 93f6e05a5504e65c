// A part of a worker process that adds to the WorkerInstance record it heartbeats (WorkerInstanceService shows
// it): e.g. the SUPERVISED_PROCESS runner's child processes. The composition root collects reporters, so the
// core never imports a runner.
import type { WorkerInstanceData } from "../gen/jobworkerp/data/worker_instance_pb.js";

export interface InstanceReporter {
  /** Writes its current state into the record, just before each heartbeat. */
  report(data: WorkerInstanceData): void;
  /** Asks for an early heartbeat after a notable change (e.g. a child died or became ready). */
  onNotable(listener: () => void): void;
}
