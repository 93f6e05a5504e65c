// The pg pool as Kysely sees it: every connection-level failure becomes AppError UNAVAILABLE (here and nowhere
// else) and text PostgreSQL cannot hold becomes INVALID_ARGUMENT; a client whose connection failed or timed
// out is dropped from the pool instead of being handed out again.
import type { PostgresPool, PostgresPoolClient } from "kysely";
import type { Pool, PoolClient } from "pg";
import { AppError } from "../../core/errors.js";

// Socket-level errors from Node.
const LINK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

// The server's own "not now" answers: admin_shutdown, crash_shutdown, cannot_connect_now (starting up or
// shutting down), too_many_connections. Every other SQLSTATE (unique_violation, bad password, missing
// database, syntax...) passes through untouched so that the store can still map 23505 to ALREADY_EXISTS.
const UNAVAILABLE_STATES = new Set(["57P01", "57P02", "57P03", "53300"]);

// pg reports a lost or silent server as plain Errors without a code.
const LINK_MESSAGES = /^(Connection terminated|Query read timeout|timeout expired|timeout exceeded when trying to connect|Client has encountered a connection error)/;

const field = (err: unknown, key: string): unknown =>
  typeof err === "object" && err !== null ? (err as Record<string, unknown>)[key] : undefined;

export function isConnectionError(err: unknown): boolean {
  if (err instanceof AppError) return err.kind === "UNAVAILABLE";
  const code = field(err, "code");
  if (typeof code === "string") {
    // SQLSTATE class 08: connection exception
    return LINK_CODES.has(code) || UNAVAILABLE_STATES.has(code) || (code.length === 5 && code.startsWith("08"));
  }
  return err instanceof Error && LINK_MESSAGES.test(err.message);
}

// character_not_in_repertoire / untranslatable_character: a string PostgreSQL text cannot hold (in practice a
// NUL, which SQLite and MySQL store): the caller's input, not a server fault.
const UNSTORABLE_TEXT = new Set(["22021", "22P05"]);

export function toAppError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  if (UNSTORABLE_TEXT.has(field(err, "code") as string)) {
    return new AppError("INVALID_ARGUMENT", `PostgreSQL cannot store this text (NUL characters are not allowed): ${(err as Error).message}`);
  }
  if (!isConnectionError(err)) return err;
  const code = field(err, "code");
  const msg = err instanceof Error ? err.message : String(err);
  return new AppError("UNAVAILABLE", `PostgreSQL unavailable: ${msg}${code && !msg.includes(String(code)) ? ` (${code})` : ""}`);
}

/** Wraps a pg Pool for Kysely's PostgresDialect. */
export function guardPool(pool: Pool): PostgresPool {
  // Kysely keys its connection objects by the client it gets: hand out one wrapper per pg client.
  const wrapped = new WeakMap<PoolClient, PostgresPoolClient>();
  return {
    async connect() {
      let raw: PoolClient;
      try {
        raw = await pool.connect();
      } catch (e) {
        throw toAppError(e);
      }
      let client = wrapped.get(raw);
      if (!client) {
        client = guardClient(raw);
        wrapped.set(raw, client);
      }
      return client;
    },
    end: () => pool.end(),
  };
}

function guardClient(raw: PoolClient): PostgresPoolClient {
  // Set by a failed or timed-out query: a timed-out query is still in flight on that connection, and
  // whatever follows it would queue behind it, so the client is destroyed on release.
  let broken = false;
  // A connection that dies while the client is checked out but between queries (inside a transaction, say)
  // is reported as an 'error' event, which would crash the process without a listener.
  raw.on("error", () => {
    broken = true;
  });
  const query = (sqlOrCursor: unknown, parameters?: ReadonlyArray<unknown>): unknown => {
    // Cursors (streaming) are unused by the store; hand them through.
    if (typeof sqlOrCursor !== "string") return raw.query(sqlOrCursor as never);
    return raw.query(sqlOrCursor, parameters as unknown[]).catch((e: unknown) => {
      if (isConnectionError(e)) broken = true;
      throw toAppError(e);
    });
  };
  return {
    query: query as PostgresPoolClient["query"],
    release() {
      raw.release(broken || undefined);
      broken = false;
    },
  };
}
