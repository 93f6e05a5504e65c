// Ports: the small interfaces the core depends on. Adapters (memory, sqlite, later redis/mysql/aws) implement them.
// Domain values are the generated protobuf messages (Worker, Job, JobResult...): the wire contract is the domain.
import type {
  JobProcessingStatus,
  Priority,
  ResultOutputItem,
  ResultStatus,
  RunnerType,
} from "../gen/jobworkerp/data/common_pb.js";
import type { Job } from "../gen/jobworkerp/data/job_pb.js";
import type { FunctionSet } from "../gen/jobworkerp/function/data/function_set_pb.js";
import type { JobResult, JobResultSortField } from "../gen/jobworkerp/data/job_result_pb.js";
import type { RunnerSortField } from "../gen/jobworkerp/data/runner_pb.js";
import type { Worker, WorkerData, WorkerSortField } from "../gen/jobworkerp/data/worker_pb.js";
import type { WorkerInstance } from "../gen/jobworkerp/data/worker_instance_pb.js";

// ---------------------------------------------------------------- Store (RDB: SQLite, MySQL, PostgreSQL)

export interface WorkerFilter {
  runnerTypes?: RunnerType[]; // matched through the runner table
  runnerIds?: bigint[];
  channel?: string; // "" or undefined channel in WorkerData means the default channel
  namePrefix?: string;
  isPeriodic?: boolean;
  limit?: number;
  offset?: number;
  sortBy?: WorkerSortField;
  ascending?: boolean;
}

export interface RunnerRow {
  id: bigint;
  name: string;
  description: string;
  runnerType: RunnerType;
  definition: string;
  createdAt: number;
}

export interface RunnerFilter {
  runnerTypes?: RunnerType[];
  namePrefix?: string;
  limit?: number;
  offset?: number;
  sortBy?: RunnerSortField;
  ascending?: boolean;
}

export interface JobResultFilter {
  workerIds?: bigint[];
  statuses?: ResultStatus[];
  startTimeFrom?: bigint;
  startTimeTo?: bigint;
  endTimeFrom?: bigint;
  endTimeTo?: bigint;
  priorities?: Priority[];
  uniqKey?: string;
  limit?: number;
  offset?: number;
  sortBy?: JobResultSortField;
  ascending?: boolean;
}

export interface JobResultBulkDelete {
  endTimeBefore?: bigint;
  statuses?: ResultStatus[];
  workerIds?: bigint[];
}

export interface Store {
  /** Create tables / run pending migrations; seed built-in runner rows (INSERT OR IGNORE). */
  migrate(builtinRunners: RunnerRow[]): Promise<void>;
  close(): Promise<void>;

  // workers (id = autoincrement). Duplicate name → AppError ALREADY_EXISTS.
  createWorker(data: WorkerData, createdAt: number): Promise<bigint>;
  /** Returns false when no such worker. Duplicate name → ALREADY_EXISTS. */
  updateWorker(id: bigint, data: WorkerData): Promise<boolean>;
  deleteWorker(id: bigint): Promise<boolean>;
  findWorker(id: bigint): Promise<Worker | undefined>;
  findWorkerByName(name: string): Promise<Worker | undefined>;
  findWorkers(filter: WorkerFilter): Promise<Worker[]>;
  countWorkers(filter: WorkerFilter): Promise<number>;
  /** Worker count per channel name (the default channel under its own name). */
  countWorkersByChannel(defaultChannel: string): Promise<Map<string, number>>;

  // runners
  createRunner(row: RunnerRow): Promise<void>; // duplicate name → ALREADY_EXISTS
  /** Replace a runner's description and definition (e.g. an MCP server whose MCP_CONFIG entry changed). False when gone. */
  updateRunner(id: bigint, patch: { description: string; definition: string }): Promise<boolean>;
  deleteRunner(id: bigint): Promise<boolean>;
  findRunner(id: bigint): Promise<RunnerRow | undefined>;
  findRunnerByName(name: string): Promise<RunnerRow | undefined>;
  findRunners(filter: RunnerFilter): Promise<RunnerRow[]>;
  countRunners(filter: RunnerFilter): Promise<number>;

  // durable jobs (scheduled, periodic, WITH_BACKUP, DB_ONLY); the Job's metadata is stored too.
  /** Duplicate id or uniq_key → ALREADY_EXISTS. */
  insertJob(job: Job): Promise<void>;
  /** Replace the row's data (run_after_time, retried, grabbed_until_time...). Returns false when gone. */
  updateJob(job: Job): Promise<boolean>;
  deleteJob(id: bigint): Promise<boolean>;
  deleteJobsOfWorker(workerId: bigint): Promise<number>;
  findJob(id: bigint): Promise<Job | undefined>;
  findJobs(limit: number, offset: number): Promise<Job[]>;
  countJobs(): Promise<number>;
  /**
   * Jobs with run_after_time <= until and grabbed_until_time (null/0) < now, ordered by
   * run_after_time then priority DESC. Used by the clock.
   */
  findDueJobs(until: bigint, now: bigint, limit: number): Promise<Job[]>;
  /**
   * findDueJobs and grab every returned row (grabbed_until_time = grabUntil, also set on the returned jobs) as
   * one step: concurrent callers never get the same row (SKIP LOCKED where the database has it, else a
   * compare-and-set per row). Used by the clock.
   */
  grabDueJobs(until: bigint, now: bigint, limit: number, grabUntil: bigint): Promise<Job[]>;
  /**
   * Atomically set grabbed_until_time = grabUntil if it still equals `expected` (compare-and-set,
   * so two clocks cannot both grab a job). Returns true when this caller won.
   */
  grabJob(id: bigint, expected: bigint | undefined, grabUntil: bigint): Promise<boolean>;
  /** Clear every grab (embedded mode at startup: the only process that could hold them is gone). */
  releaseAllGrabs(): Promise<number>;

  // job results (id = snowflake)
  /**
   * Store a result. At most one result is kept per attempt (job id, retried, run_after_time): a worker that
   * dies between storing a result and acknowledging its lease makes the job run again, and that second run's
   * result is dropped here (returns false). A result id already taken by another attempt → ALREADY_EXISTS.
   */
  insertResult(result: JobResult): Promise<boolean>;
  findResult(id: bigint): Promise<JobResult | undefined>;
  findResultsByJobId(jobId: bigint): Promise<JobResult[]>;
  findResults(filter: JobResultFilter): Promise<JobResult[]>;
  countResults(filter: JobResultFilter): Promise<number>;
  deleteResult(id: bigint): Promise<boolean>;
  deleteResults(filter: JobResultBulkDelete): Promise<number>;

  // function sets (id = snowflake; targets kept in their given order). Duplicate name → ALREADY_EXISTS.
  createFunctionSet(set: FunctionSet, createdAt: number): Promise<void>;
  /** Replace name, description, category and targets. False when no such set. Duplicate name → ALREADY_EXISTS. */
  updateFunctionSet(set: FunctionSet): Promise<boolean>;
  deleteFunctionSet(id: bigint): Promise<boolean>;
  findFunctionSet(id: bigint): Promise<FunctionSet | undefined>;
  findFunctionSetByName(name: string): Promise<FunctionSet | undefined>;
  /** Ordered by id. */
  findFunctionSets(limit?: number, offset?: number): Promise<FunctionSet[]>;
  countFunctionSets(): Promise<number>;

  // workflow checkpoints (WORKFLOW runner): data is a CheckPointContext as JSON text; a later save of the same
  // (execution key, position) replaces the earlier one.
  saveWorkflowCheckpoint(executionKey: string, position: string, data: string, savedAt: number): Promise<void>;
  loadWorkflowCheckpoint(executionKey: string, position: string): Promise<string | undefined>;
  /** Removes every checkpoint of an execution; returns how many. */
  deleteWorkflowCheckpoints(executionKey: string): Promise<number>;

  // spilled job bytes (a queue whose messages are too small for a job, e.g. SQS: the message carries the key).
  /** Duplicate key → ALREADY_EXISTS. */
  putSpill(key: string, data: Uint8Array, createdAt: number): Promise<void>;
  getSpill(key: string): Promise<Uint8Array | undefined>;
  deleteSpill(key: string): Promise<boolean>;
}

// ---------------------------------------------------------------- JobQueue (memory, Redis, SQS)

export interface QueuedJob {
  job: Job;
  /** Channel name (already resolved; default channel is "__default_job_channel__"). */
  channel: string;
  /** The job has a row in the Store (scheduled, periodic, WITH_BACKUP, DB_ONLY): delete it when done. */
  durable?: boolean;
  /** Runs the runner's load() only (WorkerService.Load). */
  loadOnly?: boolean;
}

export interface Lease {
  item: QueuedJob;
  /** Opaque handle for ack/extend/requeue; unique per delivery. */
  token: string;
}

/**
 * Reliable delivery: a leased job stays owned by its leaser for `leaseMs` (an adapter setting), renewed by
 * `extend`; a lease that runs out (worker killed, host lost) makes the job deliverable again. `ack` and
 * `requeue` succeed only for the current lease, and each is atomic, so the queue itself neither loses nor
 * duplicates a job.
 */
export interface JobQueue {
  /** Enqueue for immediate delivery, or after delayMs. */
  push(item: QueuedJob, delayMs?: number): Promise<void>;
  /**
   * Wait for the next job of the channel in strict priority order (HIGH > MEDIUM > LOW, FIFO within one).
   * Resolves undefined when the signal aborts.
   */
  lease(channel: string, signal: AbortSignal): Promise<Lease | undefined>;
  /**
   * Non-blocking lease (weighted sub-queues): the next job of the channel in the same strict priority order as
   * `lease`, or undefined at once when none is ready now. The core's weighted leaser calls it on each sub-queue
   * channel (`inference:high`, `inference:low`) in turn.
   */
  tryLease(channel: string): Promise<Lease | undefined>;
  /**
   * Idle wait of the weighted leaser: resolves when a job may be ready on one of the channels (a push, a delayed
   * job coming due, an expired lease), at the latest after maxWaitMs, and at once when the signal aborts. Never
   * leases. Early or spurious returns are allowed: an adapter that cannot watch its queues may simply sleep.
   */
  waitForWork(channels: string[], maxWaitMs: number, signal: AbortSignal): Promise<void>;
  /** Done with the job. False when the lease was lost (expired and delivered again). */
  ack(lease: Lease): Promise<boolean>;
  /** Renew the lease for another `ms`. False when it was lost: the job may be running elsewhere. */
  extend(lease: Lease, ms: number): Promise<boolean>;
  /** Ack the lease and enqueue `item` (a retry) after delayMs, as one step. False when the lease was lost. */
  requeue(lease: Lease, item: QueuedJob, delayMs: number): Promise<boolean>;
  /** Remove a job that has not been leased yet (pending or delayed; every occurrence). True if any was removed. */
  remove(jobId: bigint): Promise<boolean>;
  /** Jobs waiting in a channel (or all channels), in delivery order; delayed jobs last. */
  list(channel: string | undefined, limit: number): Promise<QueuedJob[]>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- JobState (memory, Redis, DynamoDB)

export interface JobStatusEntry {
  jobId: bigint;
  status: JobProcessingStatus;
  workerId: bigint;
  channel: string;
  priority: Priority;
  enqueueTime: bigint;
  pendingTime?: bigint;
  startTime?: bigint;
  isStreamable: boolean;
  broadcastResults: boolean;
  updatedAt: bigint;
  /** The job itself (for FindListWithProcessingStatus / FindQueueList). */
  job: Job;
}

export interface JobStatusFilter {
  status?: JobProcessingStatus;
  workerId?: bigint;
  channel?: string;
  minElapsedTimeMs?: number;
  limit?: number;
  offset?: number;
  descending?: boolean;
}

export interface Claim {
  /** Fencing token: increases with every claim of the same job; a stale token cannot finish the job. */
  token: number;
}

export interface JobState {
  /** Record a job as PENDING. */
  setPending(entry: JobStatusEntry): Promise<void>;
  /**
   * Claim a job for running: → RUNNING with a new fencing token (the entry is created from `entry` when
   * missing, e.g. the next occurrence of a periodic job). Returns undefined when the job is CANCELLING:
   * it must not run, and the caller reports it CANCELLED.
   */
  claim(entry: JobStatusEntry, now: bigint): Promise<Claim | undefined>;
  /** RUNNING → WAIT_RESULT (only with the current token). */
  markWaitResult(jobId: bigint, claim: Claim): Promise<boolean>;
  /** Back to PENDING for a retry (only with the current token). */
  markPendingForRetry(jobId: bigint, claim: Claim, now: bigint): Promise<boolean>;
  /** Finish: remove the status (only with the current token). Returns false if the token is stale. */
  finish(jobId: bigint, claim: Claim): Promise<boolean>;
  /** Remove a status regardless of claims (job deleted before it ran). */
  remove(jobId: bigint): Promise<void>;
  /**
   * Request cancellation: PENDING/RUNNING → CANCELLING. Returns the status before, or undefined if unknown.
   */
  requestCancel(jobId: bigint): Promise<JobProcessingStatus | undefined>;
  find(jobId: bigint): Promise<JobStatusEntry | undefined>;
  findAll(filter: JobStatusFilter): Promise<JobStatusEntry[]>;
  count(filter: JobStatusFilter): Promise<Map<JobProcessingStatus, number>>;

  /** Reserve a uniq_key for a job; false when another live job holds it. */
  reserveUniqKey(workerId: bigint, key: string, jobId: bigint): Promise<boolean>;
  releaseUniqKey(workerId: bigint, key: string, jobId: bigint): Promise<void>;
  /**
   * The job holding a uniq_key reservation, or undefined when none does (content deduplication reads it after a
   * failed reserveUniqKey to reject or coalesce onto that job). A plain read; it need not be atomic with reserve.
   */
  uniqKeyHolder(workerId: bigint, key: string): Promise<bigint | undefined>;
}

// ---------------------------------------------------------------- ResultBus (memory, Redis)

export interface ResultBus {
  /**
   * Publish a final result. Waiters on the job (DIRECT and Listen) receive it; when `broadcast`,
   * worker listeners receive it too. Kept for late waiters for `keepMs`.
   */
  publishResult(result: JobResult, opts: { broadcast: boolean; keepMs: number }): Promise<void>;
  /** Resolve with the job's final result (one published earlier and still kept, or the next one). */
  waitResult(jobId: bigint, timeoutMs: number, signal?: AbortSignal): Promise<JobResult | undefined>;
  /** All results of a worker published from now on, until the signal aborts. */
  subscribeWorker(workerId: bigint, signal: AbortSignal): AsyncIterable<JobResult>;
  /** Streamed chunks of a job; `end` / `final_collected` items terminate the stream. */
  publishChunk(jobId: bigint, item: ResultOutputItem): Promise<void>;
  /** Chunks of a job from now on; ends after an end item or when the signal aborts. Subscribe before the job can run. */
  subscribeChunks(jobId: bigint, signal: AbortSignal): AsyncIterable<ResultOutputItem>;
  /** Cross-process cancellation signal for running jobs. */
  publishCancel(jobId: bigint): Promise<void>;
  onCancel(listener: (jobId: bigint) => void): () => void;
  /**
   * Cross-process signal that a definition changed: a worker (caches and static runner pools drop it) or a
   * dynamic runner (its loaded definition is dropped; RunnerRegistry.changed).
   */
  publishChanged(kind: DefinitionKind, id: bigint): Promise<void>;
  onChanged(listener: (kind: DefinitionKind, id: bigint) => void): () => void;
  close(): Promise<void>;
}

export type DefinitionKind = "worker" | "runner";

// ---------------------------------------------------------------- Worker instances (memory, Redis)

export interface InstanceRegistry {
  /** Register or refresh (heartbeat) this process's worker instance. */
  heartbeat(instance: WorkerInstance): Promise<void>;
  list(): Promise<WorkerInstance[]>;
  find(id: bigint): Promise<WorkerInstance | undefined>;
  remove(id: bigint): Promise<void>;
}

// ---------------------------------------------------------------- Leader lock (memory, Redis)

/** Exactly one holder at a time across processes; a holder that stops renewing loses it after ttlMs. */
export interface LeaderLock {
  /** Take the lock if free (or already ours), for ttlMs. */
  acquire(ttlMs: number): Promise<boolean>;
  /** Extend our hold; false when we no longer hold it. */
  renew(ttlMs: number): Promise<boolean>;
  release(): Promise<void>;
}
