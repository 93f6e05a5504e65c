// MySQL / MariaDB Store: the shared SqlStore over a mysql2 pool and Kysely's MysqlDialect.
import { CompiledQuery, Kysely, MysqlDialect } from "kysely";
import { createPool } from "mysql2";
import { invalid } from "../../core/errors.js";
import { mysqlDialect } from "../sql/dialect.js";
import type { Database } from "../sql/schema.js";
import { SqlStore } from "../sql/store.js";
import { guardPool } from "./pool.js";

export { isConnectionError, toAppError } from "./pool.js";

/**
 * Session mode set on every connection, whatever the server's configuration: strict, so an out-of-range or
 * oversized value fails instead of being silently clipped, and without NO_BACKSLASH_ESCAPES, which would break
 * mysql2's client-side parameter escaping. Valid on MySQL 8 and MariaDB 10.x.
 */
export const SESSION_SQL_MODE = "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION";

export interface MysqlOptions {
  /** Pool size (default 10). */
  connectionLimit?: number;
  /** TCP connect + handshake limit (default 3000 ms). */
  connectTimeoutMs?: number;
  /**
   * Longest wait for a free pooled connection and for each query (default 60000 ms; 0 = none). A query
   * that runs out drops its connection and fails with UNAVAILABLE.
   */
  queryTimeoutMs?: number;
}

/** Open (not migrate) a store on `mysql://user:password@host:port/database`; call `migrate()` before use. */
export async function openMysqlStore(url: string, opts: MysqlOptions = {}): Promise<SqlStore> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(`invalid MySQL URL '${url}'`);
  }
  if (parsed.protocol !== "mysql:" && parsed.protocol !== "mariadb:") {
    throw invalid(`MySQL URL must start with mysql:// (got '${parsed.protocol}')`);
  }
  if (parsed.pathname.length <= 1) throw invalid(`no database name in MySQL URL '${url}'`);
  // Better refused than silently ignored (ssl=..., charset=...): the options below are the supported set.
  if (parsed.search) throw invalid(`MySQL URL parameters are not supported ('${parsed.search}')`);
  const pool = createPool({
    host: parsed.hostname || "127.0.0.1",
    port: parsed.port ? Number(parsed.port) : 3306,
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.slice(1)),
    // Snowflake ids exceed 2^53: BIGINT columns come back as strings, never as lossy numbers.
    supportBigNumbers: true,
    bigNumberStrings: true,
    charset: "utf8mb4",
    connectionLimit: opts.connectionLimit ?? 10,
    connectTimeout: opts.connectTimeoutMs ?? 3000,
    // A dead peer that never sends FIN/RST is found by keepalive, not only by the query timeout.
    enableKeepAlive: true,
    keepAliveInitialDelay: 10_000,
  });
  // An idle connection that dies emits 'error' (the pool then drops it); without a listener a second such
  // event would be an uncaught exception. Queries still get their own errors through their callbacks.
  pool.on("connection", (conn) => conn.on("error", () => {}));
  const db = new Kysely<Database>({
    dialect: new MysqlDialect({
      pool: guardPool(pool, { timeoutMs: opts.queryTimeoutMs ?? 60_000 }),
      onCreateConnection: async (conn) => {
        await conn.executeQuery(CompiledQuery.raw(`SET SESSION sql_mode = '${SESSION_SQL_MODE}'`));
      },
    }),
  });
  return new SqlStore(db, mysqlDialect);
}
