// Initial schema: worker, runner, job, job_result (see the jobworkerp-rs RDB schema; job_result also
// keeps the JobResultData fields rs fills from the worker at read time, so a result reads back as written).
import type { Kysely, Migration } from "kysely";
import type { ColumnTypes } from "../dialect.js";

// varchar(255) for indexed strings: MySQL cannot index TEXT without a prefix length (255 utf8mb4 characters
// are 1020 bytes, within InnoDB's 3072-byte key limit).
const VARCHAR = "varchar(255)";
// proto uint32 fields (intervals, retry counts) overflow MySQL's signed INT; SQLite stores both alike.
const U32 = "bigint";

export function initialMigration(t: ColumnTypes): Migration {
  const NAME = t.name ?? VARCHAR;
  return {
    async up(db: Kysely<any>) {
      const createTable = (name: string) => {
        const b = db.schema.createTable(name);
        return t.tableOptions ? b.modifyEnd(t.tableOptions) : b;
      };
      await createTable("runner")
        .addColumn("id", "bigint", (c) => c.primaryKey())
        .addColumn("name", NAME, (c) => c.notNull().unique())
        .addColumn("description", t.text, (c) => c.notNull())
        .addColumn("definition", t.text, (c) => c.notNull())
        .addColumn("type", "integer", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull().defaultTo(0))
        .execute();

      await createTable("worker")
        .addColumn("id", t.autoId, (c) => (t.autoIncrement ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn("name", NAME, (c) => c.notNull().unique())
        .addColumn("description", t.text, (c) => c.notNull())
        .addColumn("runner_id", "bigint", (c) => c.notNull())
        .addColumn("runner_settings", t.blob, (c) => c.notNull())
        .addColumn("retry_type", "integer")
        .addColumn("retry_interval", U32)
        .addColumn("retry_max_interval", U32)
        .addColumn("retry_max_retry", U32)
        .addColumn("retry_basis", "double precision")
        .addColumn("periodic_interval", U32, (c) => c.notNull())
        .addColumn("channel", NAME)
        .addColumn("queue_type", "integer", (c) => c.notNull())
        .addColumn("response_type", "integer", (c) => c.notNull())
        .addColumn("store_success", "boolean", (c) => c.notNull())
        .addColumn("store_failure", "boolean", (c) => c.notNull())
        .addColumn("use_static", "boolean", (c) => c.notNull())
        .addColumn("broadcast_results", "boolean", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull().defaultTo(0))
        .execute();
      for (const col of ["runner_id", "channel", "periodic_interval", "created_at"]) {
        await db.schema.createIndex(`worker_${col}_idx`).on("worker").column(col).execute();
      }

      await createTable("job")
        .addColumn("id", "bigint", (c) => c.primaryKey())
        .addColumn("worker_id", "bigint", (c) => c.notNull())
        .addColumn("args", t.blob, (c) => c.notNull())
        .addColumn("uniq_key", NAME, (c) => c.unique())
        .addColumn("enqueue_time", "bigint", (c) => c.notNull())
        .addColumn("grabbed_until_time", "bigint")
        .addColumn("run_after_time", "bigint", (c) => c.notNull())
        .addColumn("retried", U32, (c) => c.notNull())
        .addColumn("priority", "integer", (c) => c.notNull())
        .addColumn("timeout", "bigint", (c) => c.notNull())
        .addColumn("streaming_type", "integer", (c) => c.notNull())
        .addColumn("using", NAME)
        .addColumn("overrides", t.blob)
        .addColumn("metadata", t.text)
        .execute();
      await db.schema.createIndex("job_due_idx").on("job").columns(["run_after_time", "grabbed_until_time"]).execute();
      await db.schema.createIndex("job_worker_id_idx").on("job").column("worker_id").execute();

      await createTable("job_result")
        .addColumn("id", "bigint", (c) => c.primaryKey())
        .addColumn("job_id", "bigint", (c) => c.notNull())
        .addColumn("worker_id", "bigint", (c) => c.notNull())
        .addColumn("worker_name", NAME, (c) => c.notNull())
        .addColumn("args", t.blob, (c) => c.notNull())
        .addColumn("uniq_key", NAME)
        .addColumn("status", "integer", (c) => c.notNull())
        .addColumn("output", t.blob)
        .addColumn("retried", U32, (c) => c.notNull())
        .addColumn("max_retry", U32, (c) => c.notNull())
        .addColumn("priority", "integer", (c) => c.notNull())
        .addColumn("timeout", "bigint", (c) => c.notNull())
        .addColumn("enqueue_time", "bigint", (c) => c.notNull())
        .addColumn("run_after_time", "bigint", (c) => c.notNull())
        .addColumn("start_time", "bigint", (c) => c.notNull())
        .addColumn("end_time", "bigint", (c) => c.notNull())
        .addColumn("response_type", "integer", (c) => c.notNull())
        .addColumn("store_success", "boolean", (c) => c.notNull())
        .addColumn("store_failure", "boolean", (c) => c.notNull())
        .addColumn("using", NAME)
        .addColumn("streaming_type", "integer", (c) => c.notNull())
        .addColumn("broadcast_results", "boolean", (c) => c.notNull())
        .addColumn("resolved_retry_policy", t.blob)
        .addColumn("metadata", t.text)
        .execute();
      await db.schema.createIndex("job_result_job_id_idx").on("job_result").columns(["job_id", "end_time"]).execute();
      await db.schema.createIndex("job_result_worker_id_idx").on("job_result").column("worker_id").execute();
      await db.schema.createIndex("job_result_uniq_key_idx").on("job_result").column("uniq_key").execute();
      // default listing order and bulk delete by age
      await db.schema.createIndex("job_result_end_time_idx").on("job_result").column("end_time").execute();
    },
    async down(db: Kysely<any>) {
      for (const table of ["job_result", "job", "worker", "runner"]) await db.schema.dropTable(table).execute();
    },
  };
}
