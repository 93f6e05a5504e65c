// What differs between SQLite, MySQL and PostgreSQL for the store: a few column types and table options (used
// by the migrations), how a driver reports a unique-key violation, and whether due jobs can be grabbed with
// SELECT ... FOR UPDATE SKIP LOCKED. Queries themselves are dialect-neutral.
import { sql, type ColumnDataType, type Expression } from "kysely";

type DataTypeExpression = ColumnDataType | Expression<unknown>;

export interface ColumnTypes {
  /** Type of the autoincrement `worker.id` column. */
  autoId: DataTypeExpression;
  /** Whether `autoId` needs the AUTOINCREMENT / AUTO_INCREMENT modifier (not for pg bigserial). */
  autoIncrement: boolean;
  blob: DataTypeExpression;
  /** Unindexed text (descriptions, runner definitions, metadata JSON). */
  text: DataTypeExpression;
  /** Indexed names and keys (default varchar(255)); PostgreSQL adds a byte-wise collation. */
  name?: DataTypeExpression;
  /** Appended to every CREATE TABLE (MySQL: engine, charset, collation). */
  tableOptions?: Expression<unknown>;
}

export interface SqlDialect {
  name: "sqlite" | "mysql" | "postgres";
  types: ColumnTypes;
  isUniqueViolation(err: unknown): boolean;
  /**
   * Row locks with SKIP LOCKED (MySQL 8.0, MariaDB 10.6, PostgreSQL): concurrent clocks grab disjoint due rows
   * in one transaction each. Without it (SQLite, whose writers are serialized anyway) rows are grabbed one by
   * one with a compare-and-set.
   */
  skipLocked: boolean;
}

const field = (err: unknown, key: string): unknown =>
  typeof err === "object" && err !== null ? (err as Record<string, unknown>)[key] : undefined;

export const sqliteDialect: SqlDialect = {
  name: "sqlite",
  // "integer primary key" is SQLite's rowid alias; it is 64-bit anyway.
  types: { autoId: "integer", autoIncrement: true, blob: "blob", text: "text" },
  skipLocked: false,
  isUniqueViolation(err) {
    const ext = field(err, "extendedCode");
    if (ext === "SQLITE_CONSTRAINT_UNIQUE" || ext === "SQLITE_CONSTRAINT_PRIMARYKEY") return true;
    // Remote libsql (hrana) errors carry only the base code; tell unique apart from NOT NULL etc. by text.
    return field(err, "code") === "SQLITE_CONSTRAINT" && /UNIQUE constraint failed/i.test(String(field(err, "message")));
  },
};

export const mysqlDialect: SqlDialect = {
  name: "mysql",
  types: {
    autoId: "bigint",
    autoIncrement: true,
    // BLOB/TEXT stop at 64 KiB and MEDIUM* at 16 MiB; LONG* leave max_allowed_packet as the only limit.
    blob: sql`longblob`,
    text: sql`longtext`,
    // utf8mb4 whatever the server's default (MariaDB's is latin1); binary collation so that names compare,
    // sort and stay unique byte-wise as in SQLite (the default *_ci collations fold case and sort '_' after
    // letters). Caveat: utf8mb4_bin pads, so 'a' and 'a ' collide in a unique index.
    tableOptions: sql`engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin`,
  },
  // ER_DUP_ENTRY, and ER_DUP_ENTRY_WITH_KEY_NAME that MySQL uses for some statements
  isUniqueViolation: (err) => [1062, 1586].includes(field(err, "errno") as number),
  skipLocked: true,
};

export const postgresDialect: SqlDialect = {
  name: "postgres",
  types: {
    autoId: "bigserial",
    autoIncrement: false,
    blob: "bytea",
    text: "text",
    // "C": names compare, sort and prefix-match byte-wise as in SQLite and MySQL (utf8mb4_bin), whatever the
    // database's locale; it also lets `name LIKE 'prefix%'` use the index.
    name: sql`varchar(255) collate "C"`,
  },
  isUniqueViolation: (err) => field(err, "code") === "23505", // unique_violation
  skipLocked: true,
};
