// One MySQL database per test file (or per test), so files running in parallel against the run's single
// MariaDB never see each other's tables.
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";

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
