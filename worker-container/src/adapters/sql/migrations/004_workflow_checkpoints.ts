// Workflow checkpoints (WORKFLOW runner `checkpoint: true` tasks): one row per (execution, task position),
// holding the saved CheckPointContext as JSON text, so a run can be resumed after the process died.
import type { Kysely, Migration } from "kysely";
import type { ColumnTypes } from "../dialect.js";

export function workflowCheckpointsMigration(t: ColumnTypes): Migration {
  return {
    async up(db: Kysely<any>) {
      // (255 + 500) characters keeps the composite key within MySQL's 3072-byte index limit in utf8mb4
      const b = db.schema
        .createTable("workflow_checkpoint")
        .addColumn("execution_key", "varchar(255)", (c) => c.notNull())
        .addColumn("position", "varchar(500)", (c) => c.notNull())
        .addColumn("data", t.text, (c) => c.notNull())
        .addColumn("saved_at", "bigint", (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint("workflow_checkpoint_pk", ["execution_key", "position"]);
      await (t.tableOptions ? b.modifyEnd(t.tableOptions) : b).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("workflow_checkpoint").execute();
    },
  };
}
