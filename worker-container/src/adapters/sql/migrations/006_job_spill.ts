// Bytes of jobs too big for one queue message (AWS mode: SQS's 256 KiB): the message carries the key only.
import type { Kysely, Migration } from "kysely";
import type { ColumnTypes } from "../dialect.js";

export function jobSpillMigration(t: ColumnTypes): Migration {
  return {
    async up(db: Kysely<any>) {
      const b = db.schema
        .createTable("job_spill")
        .addColumn("spill_key", "varchar(255)", (c) => c.primaryKey())
        .addColumn("data", t.blob, (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull().defaultTo(0));
      await (t.tableOptions ? b.modifyEnd(t.tableOptions) : b).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("job_spill").execute();
    },
  };
}
