// One MySQL (or PostgreSQL) database per test file (or per test), so files running in parallel against the
// run's single MariaDB (PostgreSQL) never see each other's tables.
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import pg from "pg";
import { inject } from "vitest";

export interface TestDatabase {
  /** The base URL with the new database's name as its path. */
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** `baseUrl` is an admin URL such as `inject("mysqlUrl")`; its user must be allowed to create databases. */
export async function createTestDatabase(baseUrl: string, prefix = "test"): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const admin = () => mysql.createConnection({ uri: baseUrl, connectTimeout: 5000 });
  const conn = await admin();
  try {
    await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  } finally {
    await conn.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: async () => {
      const c = await admin();
      try {
        await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await c.end();
      }
    },
  };
}

/** Admin URL of the run's PostgreSQL (test/global-setup.ts); throws why there is none. */
export function postgresAdminUrl(): string {
  const url = inject("postgresUrl");
  if (!url) throw new Error(inject("postgresError") || "no PostgreSQL for this run");
  return url;
}

/** A PostgreSQL database; `baseUrl` is an admin URL such as postgresAdminUrl() whose user may create databases. */
export async function createPostgresTestDatabase(baseUrl: string, prefix = "test", options = ""): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const admin = async (statement: string) => {
    const c = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 5000 });
    await c.connect();
    try {
      await c.query(statement);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE "${name}" ${options}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    // FORCE: ends the sessions of stores a failed test left open
    drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}
