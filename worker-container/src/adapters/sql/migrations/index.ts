// Migrations in name order (Kysely's Migrator sorts by name). Add new ones as NNN_name.ts.
import { Migrator, type Kysely, type Migration } from "kysely";
import type { ColumnTypes } from "../dialect.js";
import { initialMigration } from "./001_initial.js";
import { resultAttemptMigration } from "./002_result_attempt.js";
import { functionSetsMigration } from "./003_function_sets.js";
import { workflowCheckpointsMigration } from "./004_workflow_checkpoints.js";
import { workerDedupMigration } from "./005_worker_dedup.js";
import { jobSpillMigration } from "./006_job_spill.js";

export function storeMigrations(types: ColumnTypes): Record<string, Migration> {
  return {
    "001_initial": initialMigration(types),
    "002_result_attempt": resultAttemptMigration,
    "003_function_sets": functionSetsMigration(types),
    "004_workflow_checkpoints": workflowCheckpointsMigration(types),
    "005_worker_dedup": workerDedupMigration,
    "006_job_spill": jobSpillMigration(types),
  };
}

/** Run pending migrations; throws the first failure. */
export async function migrateToLatest(db: Kysely<any>, types: ColumnTypes): Promise<void> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => storeMigrations(types) } });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
}
