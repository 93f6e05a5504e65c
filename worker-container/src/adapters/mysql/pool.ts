// The mysql2 pool as Kysely sees it, with the two things mysql2 lacks for a server we depend on: every
// connection-level failure becomes AppError UNAVAILABLE (here and nowhere else), and no call waits forever
// for a hung server or a partitioned network.
import type { MysqlPool, MysqlPoolConnection, MysqlQueryResult } from "kysely";
import type { Pool, PoolConnection } from "mysql2";
import { AppError } from "../../core/errors.js";

// Socket-level errors and the server's own "going away" errors. SQL errors (duplicate key, syntax...) pass
// through untouched so that the store can still map ER_DUP_ENTRY to ALREADY_EXISTS.
const LINK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ER_SERVER_SHUTDOWN",
  "ER_CONNECTION_KILLED",
  "ER_CON_COUNT_ERROR",
  "ER_SERVER_GONE_ERROR",
  "ER_SERVER_LOST",
]);

const field = (err: unknown, key: string): unknown =>
  typeof err === "object" && err !== null ? (err as Record<string, unknown>)[key] : undefined;

export function isConnectionError(err: unknown): boolean {
  const code = field(err, "code");
  if (typeof code === "string" && LINK_CODES.has(code)) return true;
  // mysql2 flags errors that killed the connection as fatal (e.g. "Can't add new command when connection is
  // in closed state"); fatal errors with a SQLSTATE are the server refusing us (bad password), not an outage.
  return field(err, "fatal") === true && field(err, "sqlState") === undefined;
}

export function toAppError(err: unknown): unknown {
  if (err instanceof AppError || !isConnectionError(err)) return err;
  const code = field(err, "code");
  const msg = err instanceof Error ? err.message : String(err);
  return new AppError("UNAVAILABLE", `MySQL unavailable: ${msg}${code && !msg.includes(String(code)) ? ` (${code})` : ""}`);
}

export interface GuardOptions {
  /** Longest wait for a pooled connection and for one query; 0 disables. */
  timeoutMs: number;
}

/** Wraps a mysql2 (callback API) pool for Kysely's MysqlDialect. */
export function guardPool(pool: Pool, opts: GuardOptions): MysqlPool {
  const wrapped = new WeakMap<PoolConnection, MysqlPoolConnection>();
  const wrap = (raw: PoolConnection): MysqlPoolConnection => {
    let conn = wrapped.get(raw);
    if (!conn) {
      conn = guardConnection(raw, opts);
      wrapped.set(raw, conn);
    }
    return conn;
  };
  return {
    getConnection(callback) {
      let settled = false;
      // All connections busy with a hung server: give up instead of queueing forever.
      const timer =
        opts.timeoutMs > 0
          ? setTimeout(() => {
              settled = true;
              callback(new AppError("UNAVAILABLE", `MySQL unavailable: no connection within ${opts.timeoutMs} ms`), undefined as never);
            }, opts.timeoutMs)
          : undefined;
      pool.getConnection((err, raw) => {
        clearTimeout(timer);
        if (settled) {
          raw?.release();
          return;
        }
        settled = true;
        if (err) callback(toAppError(err), undefined as never);
        else callback(null, wrap(raw));
      });
    },
    end(callback) {
      pool.end((err) => callback(err ?? null));
    },
  };
}

function guardConnection(raw: PoolConnection, opts: GuardOptions): MysqlPoolConnection {
  function query(sql: string, parameters: unknown[]): { stream: never };
  function query(sql: string, parameters: unknown[], callback: (error: unknown, result: MysqlQueryResult) => void): void;
  function query(sql: string, parameters: unknown[], callback?: (error: unknown, result: MysqlQueryResult) => void) {
    // Streaming (no callback) is unused by the store; hand it through.
    if (!callback) return raw.query(sql, parameters) as unknown as { stream: never };
    let settled = false;
    const timer =
      opts.timeoutMs > 0
        ? setTimeout(() => {
            settled = true;
            // mysql2's own query timeout leaves the command queued on the connection: drop the connection
            // instead, so the pool opens a fresh one once the server answers again.
            raw.destroy();
            callback(new AppError("UNAVAILABLE", `MySQL unavailable: no answer within ${opts.timeoutMs} ms`), undefined as never);
          }, opts.timeoutMs)
        : undefined;
    raw.query(sql, parameters, (err, result) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      callback(err ? toAppError(err) : null, result as unknown as MysqlQueryResult);
    });
  }
  return { query, release: () => raw.release() };
}
