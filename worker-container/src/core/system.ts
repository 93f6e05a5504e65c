// Everything the API handlers need, wired once by the composition root (cli/compose.ts).
import type { Clock } from "./clock.js";
import type { ChannelConcurrency, Dispatcher } from "./dispatcher.js";
import type { SnowflakeGenerator } from "./ids.js";
import type { JobFront } from "./job_front.js";
import type { JobOutcomes } from "./outcomes.js";
import type { InstanceRegistry, JobQueue, JobState, ResultBus, Store } from "./ports.js";
import type { RunnerInstances } from "./runner_instances.js";
import type { RunnerRegistry } from "./runners.js";
import type { WorkerDefinitions } from "./workers.js";

export interface System {
  store: Store;
  queue: JobQueue;
  state: JobState;
  bus: ResultBus;
  instances: InstanceRegistry;
  ids: SnowflakeGenerator;
  runners: RunnerRegistry;
  workers: WorkerDefinitions;
  runnerInstances: RunnerInstances;
  outcomes: JobOutcomes;
  front: JobFront;
  clock: Clock;
  /** Present in processes that run jobs (all-in-one, worker). */
  dispatcher?: Dispatcher;
  /** Channels this deployment serves (for FindChannelList). */
  channels: ChannelConcurrency[];
  /** How long a worker is considered alive after its last heartbeat. */
  instanceTimeoutMs: number;
}
