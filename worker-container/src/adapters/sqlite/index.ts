// SQLite Store: the shared SqlStore over @libsql/client (local file or in-memory).
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createClient } from "@libsql/client";
import { Kysely, sql } from "kysely";
import { invalid } from "../../core/errors.js";
import { sqliteDialect } from "../sql/dialect.js";
import type { Database } from "../sql/schema.js";
import { SqlStore } from "../sql/store.js";
import { LibsqlClientDialect } from "./libsql-dialect.js";

export interface SqliteOptions {
  /** How long a writer waits for a lock held by another connection (ms). */
  busyTimeoutMs?: number;
}

export interface SqliteTarget {
  /** URL for @libsql/client (`file:///abs/path` or `:memory:`). */
  libsqlUrl: string;
  /** Absolute file path; undefined for in-memory. */
  path?: string;
  /** Create the file when missing (sqlx `mode=rwc`). */
  create: boolean;
}

/**
 * Accepts `sqlite://path?mode=rwc` (sqlx style, as in jobworkerp-rs SQLITE_URL: without mode=rwc the file
 * must already exist), `sqlite::memory:`, `:memory:`, `file:` URLs and plain paths (created when missing).
 */
export function parseSqliteUrl(url: string): SqliteTarget {
  if (url === ":memory:" || url === "sqlite::memory:" || url === "sqlite://:memory:") {
    return { libsqlUrl: ":memory:", create: true };
  }
  let path: string;
  let create = true;
  if (url.startsWith("sqlite:") || url.startsWith("file:")) {
    const rest = url.slice(url.indexOf(":") + 1);
    const q = rest.indexOf("?");
    const query = new URLSearchParams(q < 0 ? "" : rest.slice(q + 1));
    // "sqlite://rel.db" is relative, "sqlite:///abs.db" absolute (sqlx); file: URLs use the standard form.
    const raw = q < 0 ? rest : rest.slice(0, q);
    path = decodeURIComponent(url.startsWith("file:") ? raw.replace(/^\/\/(localhost)?(?=\/)/, "") : raw.replace(/^\/\//, ""));
    const mode = query.get("mode");
    if (mode === "memory") return { libsqlUrl: ":memory:", create: true };
    create = url.startsWith("file:") ? mode !== "ro" && mode !== "rw" : mode === "rwc";
  } else {
    path = url;
  }
  if (!path) throw invalid(`no database path in SQLite URL '${url}'`);
  const abs = resolve(path);
  return { libsqlUrl: pathToFileURL(abs).href, path: abs, create };
}

/** Open (not migrate) a SQLite store; call `migrate()` before use. */
export async function openSqliteStore(url: string, opts: SqliteOptions = {}): Promise<SqlStore> {
  const target = parseSqliteUrl(url);
  if (target.path && !target.create && !existsSync(target.path)) {
    throw invalid(`SQLite database '${target.path}' does not exist (use ?mode=rwc to create it)`);
  }
  // intMode "bigint": snowflake ids exceed 2^53; `timeout` is the per-connection busy timeout.
  const client = createClient({ url: target.libsqlUrl, intMode: "bigint", timeout: opts.busyTimeoutMs ?? 5000 });
  const db = new Kysely<Database>({ dialect: new LibsqlClientDialect(client) });
  try {
    // WAL persists in the file: readers no longer block the writer (pooled connections, other processes).
    if (target.path) await sql`PRAGMA journal_mode = WAL`.execute(db);
  } catch (e) {
    client.close();
    throw e;
  }
  return new SqlStore(db, sqliteDialect, () => client.close());
}
