// Function sets: named collections of runners/workers offered as functions (LLM tools, MCP). The targets live
// in the set's own row (a serialized FunctionSetData holding only `targets`), so creating or replacing a set is
// one statement and needs no transaction.
import type { Kysely, Migration } from "kysely";
import type { ColumnTypes } from "../dialect.js";

export function functionSetsMigration(t: ColumnTypes): Migration {
  return {
    async up(db: Kysely<any>) {
      const b = db.schema
        .createTable("function_set")
        .addColumn("id", "bigint", (c) => c.primaryKey())
        .addColumn("name", t.name ?? "varchar(255)", (c) => c.notNull().unique())
        .addColumn("description", t.text, (c) => c.notNull())
        .addColumn("category", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("targets", t.blob, (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull().defaultTo(0));
      await (t.tableOptions ? b.modifyEnd(t.tableOptions) : b).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("function_set").execute();
    },
  };
}
