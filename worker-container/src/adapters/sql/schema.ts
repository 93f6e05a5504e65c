// Table types for the Kysely store. Read types are loose on purpose: the same column comes back as
// bigint (libsql intMode "bigint"), number (mysql2 INT) or string (pg int8), and blobs as ArrayBuffer
// (libsql) or Buffer (mysql2, pg); mapping.ts normalizes them.
import type { ColumnType, Generated } from "kysely";

/** int64 column (ids, unix-ms times, timeouts). */
export type Int64 = ColumnType<bigint | number | string, bigint, bigint>;
/** int32 column (enums, counters). */
export type Int32 = ColumnType<bigint | number | string, number, number>;
export type Bool = ColumnType<boolean | bigint | number | string, boolean, boolean>;
export type Bytes = ColumnType<ArrayBuffer | Uint8Array, Uint8Array, Uint8Array>;
export type Float = ColumnType<number | string, number, number>;

type Nullable<T> = T extends ColumnType<infer S, infer I, infer U> ? ColumnType<S | null, I | null, U | null> : T | null;

export interface WorkerTable {
  id: Generated<bigint | number | string>;
  name: string;
  description: string;
  runner_id: Int64;
  runner_settings: Bytes;
  // RetryPolicy flattened; all NULL when the worker has none (absent vs present round-trips).
  retry_type: Nullable<Int32>;
  retry_interval: Nullable<Int32>;
  retry_max_interval: Nullable<Int32>;
  retry_max_retry: Nullable<Int32>;
  retry_basis: Nullable<Float>;
  periodic_interval: Int32;
  channel: string | null;
  queue_type: Int32;
  response_type: Int32;
  store_success: Bool;
  store_failure: Bool;
  use_static: Bool;
  broadcast_results: Bool;
  /** WorkerData.dedup (DedupMode; migration 005). */
  dedup: Int32;
  created_at: Int64;
}

export interface RunnerTable {
  id: Int64;
  name: string;
  description: string;
  definition: string;
  type: Int32;
  created_at: Int64;
}

export interface JobTable {
  id: Int64;
  worker_id: Int64;
  args: Bytes;
  uniq_key: string | null;
  enqueue_time: Int64;
  grabbed_until_time: Nullable<Int64>;
  run_after_time: Int64;
  retried: Int32;
  priority: Int32;
  timeout: Int64;
  streaming_type: Int32;
  using: string | null;
  /** Serialized JobExecutionOverrides; NULL when absent. */
  overrides: Nullable<Bytes>;
  /** JSON object of Job.metadata; NULL when empty. */
  metadata: string | null;
}

export interface JobResultTable {
  id: Int64;
  job_id: Int64;
  worker_id: Int64;
  worker_name: string;
  args: Bytes;
  uniq_key: string | null;
  status: Int32;
  /** ResultOutput.items; NULL when the output message is absent. */
  output: Nullable<Bytes>;
  retried: Int32;
  max_retry: Int32;
  priority: Int32;
  timeout: Int64;
  enqueue_time: Int64;
  run_after_time: Int64;
  start_time: Int64;
  end_time: Int64;
  response_type: Int32;
  store_success: Bool;
  store_failure: Bool;
  using: string | null;
  streaming_type: Int32;
  broadcast_results: Bool;
  /** Serialized RetryPolicy; NULL when absent. */
  resolved_retry_policy: Nullable<Bytes>;
  metadata: string | null;
}

export interface FunctionSetTable {
  id: Int64;
  name: string;
  description: string;
  category: Int32;
  /** Serialized FunctionSetData holding only its targets. */
  targets: Bytes;
  created_at: Int64;
}

export interface WorkflowCheckpointTable {
  /** "<workflow name>:<execution id>" */
  execution_key: string;
  /** JSON pointer of the checkpointed task. */
  position: string;
  /** The CheckPointContext as JSON text. */
  data: string;
  saved_at: Int64;
}

export interface JobSpillTable {
  spill_key: string;
  data: Bytes;
  created_at: Int64;
}

export interface Database {
  job_spill: JobSpillTable;
  workflow_checkpoint: WorkflowCheckpointTable;
  function_set: FunctionSetTable;
  worker: WorkerTable;
  runner: RunnerTable;
  job: JobTable;
  job_result: JobResultTable;
}
