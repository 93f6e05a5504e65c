// What the engine needs from the job system to run `run` tasks: implemented over the System
// (system_host.ts) and bound late, because the runner registry is built before the System exists.
import type { WorkerData } from "../../gen/jobworkerp/data/worker_pb.js";
import type { CheckpointStore } from "./checkpoint.js";

export interface JobCall {
  /** Runner name (COMMAND, HTTP_REQUEST, an MCP server…): a temporary worker with `settings` runs the job. */
  runner?: string;
  /** Name of an existing worker. */
  worker?: string;
  settings?: unknown;
  /** Job args as protobuf JSON of the method's args message. */
  args: unknown;
  using?: string;
  /** jobworkerp workerOptions (channel, retry, …) for the temporary worker. */
  options?: Record<string, unknown>;
  timeoutMs?: number;
  /** `await: false`: enqueue and return at once. */
  noWait?: boolean;
  metadata?: Record<string, string>;
  /** `useStreaming`: run the job in stream mode, report each chunk, and collect them into the result. */
  stream?: boolean;
}

export interface JobCallHooks {
  /** `streamed`: the job runs in stream mode (JobCall.stream and a method that streams). */
  onStarted?(jobId: string, runnerName: string, workerName?: string, streamed?: boolean): void;
  /** `resultId`: the stored JobResult's id, when the worker stored it. */
  onCompleted?(jobId: string, resultId?: string): void;
  /** One chunk of a streamed job (JobCall.stream), as the runner sent it. */
  onData?(jobId: string, data: Uint8Array): void;
}

export interface JobHost {
  /** Runs the job and resolves to its result as protobuf JSON (proto field names); rejects with the failure. */
  call(c: JobCall, signal: AbortSignal, hooks?: JobCallHooks): Promise<unknown>;
  /** Whether a runner / worker of that name exists (checked before a workflow runs). */
  exists?(kind: "runner" | "worker", name: string): Promise<boolean>;
  /** Creates a worker (WORKFLOW `create`); resolves to its id. */
  createWorker?(data: WorkerData): Promise<bigint>;
  /** Where checkpoints are kept (the running shape's Store). */
  readonly checkpoints?: CheckpointStore;
}

export class LateBoundJobHost implements JobHost {
  private host?: JobHost;

  bind(host: JobHost): void {
    this.host = host;
  }

  get checkpoints(): CheckpointStore | undefined {
    return this.host?.checkpoints;
  }

  call(c: JobCall, signal: AbortSignal, hooks?: JobCallHooks): Promise<unknown> {
    if (!this.host) return Promise.reject(new Error("jobs cannot be run from workflows in this process"));
    return this.host.call(c, signal, hooks);
  }

  async exists(kind: "runner" | "worker", name: string): Promise<boolean> {
    return this.host?.exists ? this.host.exists(kind, name) : true;
  }

  createWorker(data: WorkerData): Promise<bigint> {
    if (!this.host?.createWorker) return Promise.reject(new Error("workers cannot be created from this process"));
    return this.host.createWorker(data);
  }
}
