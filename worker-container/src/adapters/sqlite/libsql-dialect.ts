// Minimal Kysely dialect over a caller-owned @libsql/client Client. @libsql/kysely-libsql works with
// kysely 0.28 at runtime, but it pins its own @libsql/client 0.8 (a second native libsql, and Client
// types that do not match the 0.18 client we create), so we use this instead.
import type { Client, InValue, Transaction } from "@libsql/client";
import {
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  type TransactionSettings,
} from "kysely";

export class LibsqlClientDialect implements Dialect {
  /** The client is not closed by Kysely's destroy(); its owner closes it. */
  constructor(private readonly client: Client) {}
  createAdapter = () => new SqliteAdapter();
  createDriver = (): Driver => new LibsqlClientDriver(this.client);
  createIntrospector = (db: Kysely<any>) => new SqliteIntrospector(db);
  createQueryCompiler = () => new SqliteQueryCompiler();
}

class LibsqlClientDriver implements Driver {
  constructor(private readonly client: Client) {}
  async init(): Promise<void> {}
  // The client pools connections itself; a Kysely "connection" only pins a transaction when one is open.
  async acquireConnection(): Promise<DatabaseConnection> {
    return new LibsqlConnection(this.client);
  }
  async beginTransaction(conn: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await (conn as LibsqlConnection).begin(settings.accessMode === "read only" ? "read" : "write");
  }
  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await (conn as LibsqlConnection).end(true);
  }
  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await (conn as LibsqlConnection).end(false);
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

class LibsqlConnection implements DatabaseConnection {
  private tx?: Transaction;
  constructor(private readonly client: Client) {}

  async begin(mode: "read" | "write"): Promise<void> {
    if (this.tx) throw new Error("transaction already open on this connection");
    this.tx = await this.client.transaction(mode);
  }

  async end(commit: boolean): Promise<void> {
    const tx = this.tx;
    this.tx = undefined;
    if (!tx) throw new Error("no open transaction");
    await (commit ? tx.commit() : tx.rollback());
  }

  async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
    const rs = await (this.tx ?? this.client).execute({ sql: q.sql, args: q.parameters as InValue[] });
    return {
      rows: rs.rows as unknown as R[],
      numAffectedRows: BigInt(rs.rowsAffected),
      insertId: rs.lastInsertRowid,
    };
  }

  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported by the libsql dialect");
  }
}
