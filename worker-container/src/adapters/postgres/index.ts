// PostgreSQL Store: the shared SqlStore over a pg pool and Kysely's PostgresDialect.
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { invalid } from "../../core/errors.js";
import { postgresDialect } from "../sql/dialect.js";
import type { Database } from "../sql/schema.js";
import { SqlStore } from "../sql/store.js";
import { guardPool } from "./pool.js";

export { isConnectionError, toAppError } from "./pool.js";

export interface PostgresOptions {
  /** Pool size (default 10). */
  max?: number;
  /** TCP connect + start-up handshake limit (default 3000 ms). */
  connectTimeoutMs?: number;
  /**
   * Longest wait for a free pooled connection and for each query (default 60000 ms; 0 = none). A query
   * that runs out drops its connection and fails with UNAVAILABLE.
   */
  queryTimeoutMs?: number;
}

const INT8_OID = 20;

/**
 * Snowflake ids exceed 2^53: int8 columns (and counts) come back as bigint, never as lossy numbers. Per pool,
 * not pg's global type registry, so nothing else in the process is affected.
 */
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary" ? (v: string) => BigInt(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * Open (not migrate) a store on `postgres://user:password@host:port/database` (or `postgresql://`; pg's URL
 * parameters such as `sslmode` apply); call `migrate()` before use.
 */
export async function openPostgresStore(url: string, opts: PostgresOptions = {}): Promise<SqlStore> {
  // Messages never quote the URL: it may hold a password.
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid("invalid PostgreSQL URL (expected postgres://user:password@host:port/database)");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw invalid(`PostgreSQL URL must start with postgres:// or postgresql:// (got '${parsed.protocol}')`);
  }
  // pg would fall back to the user name as database: better say so than create tables somewhere unexpected.
  if (parsed.pathname.length <= 1) throw invalid(`no database name in PostgreSQL URL (postgres://${parsed.host}/?)`);
  const connectTimeoutMs = opts.connectTimeoutMs ?? 3000;
  const queryTimeoutMs = opts.queryTimeoutMs ?? 60_000;
  // The pool's connectionTimeoutMillis bounds the wait for a free client; each new client's own (shorter)
  // one bounds its connect, so a down server fails fast while a busy pool is waited for.
  class TimedClient extends pg.Client {
    constructor(config?: pg.ClientConfig) {
      super({ ...config, connectionTimeoutMillis: connectTimeoutMs || undefined });
    }
  }
  const pool = new pg.Pool({
    connectionString: url,
    Client: TimedClient as unknown as pg.PoolConfig["Client"],
    max: opts.max ?? 10,
    connectionTimeoutMillis: queryTimeoutMs || undefined,
    query_timeout: queryTimeoutMs || undefined,
    // A dead peer that never sends FIN/RST is found by keepalive, not only by the query timeout.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    types,
  });
  // An idle client whose connection dies emits 'error' on the pool (which then drops it); without a
  // listener that would be an uncaught exception. Queries still get their own errors.
  pool.on("error", () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: guardPool(pool) }) });
  return new SqlStore(db, postgresDialect);
}
