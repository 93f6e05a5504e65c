// WorkerData.dedup (content deduplication mode, a jobworkerp-ts extension): 0 = none for existing workers.
import type { Kysely, Migration } from "kysely";

export const workerDedupMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable("worker").addColumn("dedup", "integer", (c) => c.notNull().defaultTo(0)).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable("worker").dropColumn("dedup").execute();
  },
};
