import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSqliteStore, parseSqliteUrl } from "../../worker-container/src/adapters/sqlite/index.js";
import { BUILTIN_RUNNERS, describeStoreContract } from "./store.contract.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "jw-store-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

// A fresh file per test; open() within one test reopens that same file.
describeStoreContract("sqlite file", () => openSqliteStore(`sqlite://${join(dir, "db.sqlite3")}?mode=rwc`), { durable: true });
describeStoreContract("sqlite :memory:", () => openSqliteStore(":memory:"));

describe("sqlite specifics", () => {
  it("parses sqlx-style URLs, file URLs, plain paths and :memory:", () => {
    expect(parseSqliteUrl(":memory:")).toEqual({ libsqlUrl: ":memory:", create: true });
    expect(parseSqliteUrl("sqlite::memory:").libsqlUrl).toBe(":memory:");
    expect(parseSqliteUrl("sqlite://x.db?mode=memory").libsqlUrl).toBe(":memory:");
    expect(parseSqliteUrl("sqlite:///abs/db.sqlite3?mode=rwc")).toEqual({ libsqlUrl: "file:///abs/db.sqlite3", path: "/abs/db.sqlite3", create: true });
    expect(parseSqliteUrl("sqlite://rel.db?mode=rwc").path).toBe(join(process.cwd(), "rel.db"));
    expect(parseSqliteUrl("sqlite://rel.db").create).toBe(false); // sqlx default mode is rw
    expect(parseSqliteUrl("sqlite:///a%20b/c.db?mode=rwc").libsqlUrl).toBe("file:///a%20b/c.db");
    expect(parseSqliteUrl("file:///abs/f.db")).toEqual({ libsqlUrl: "file:///abs/f.db", path: "/abs/f.db", create: true });
    expect(parseSqliteUrl("/abs/plain.db")).toEqual({ libsqlUrl: "file:///abs/plain.db", path: "/abs/plain.db", create: true });
    expect(() => parseSqliteUrl("sqlite://?mode=rwc")).toThrow();
  });

  it("creates the file only with mode=rwc (or a plain path), and enables WAL", async () => {
    const path = join(dir, "sub.db");
    await expect(openSqliteStore(`sqlite://${path}`)).rejects.toMatchObject({ kind: "INVALID_ARGUMENT" });
    expect(existsSync(path)).toBe(false);
    const s = await openSqliteStore(path);
    await s.migrate(BUILTIN_RUNNERS);
    const mode = await sql<{ journal_mode: string }>`PRAGMA journal_mode`.execute(s.db);
    expect(mode.rows[0].journal_mode).toBe("wal");
    await s.close();
    await s.close(); // idempotent
    const again = await openSqliteStore(`sqlite://${path}`); // exists now: rw is fine
    expect(await again.countRunners({})).toBe(BUILTIN_RUNNERS.length);
    await again.close();
  });
});
