// One stored result per attempt of a job (job id, retried, run_after_time; a periodic job's occurrences differ
// in run_after_time). A job re-run after its worker died between storing and acknowledging is then stored once.
import type { Kysely, Migration } from "kysely";

export const resultAttemptMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createIndex("job_result_attempt_idx").unique().on("job_result").columns(["job_id", "retried", "run_after_time"]).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropIndex("job_result_attempt_idx").on("job_result").execute();
  },
};
