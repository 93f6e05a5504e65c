// Vitest globalSetup: one MariaDB and one Redis for the whole run (real processes on free ports, data in a
// temp dir), handed to test files as URLs through provide()/inject().
import type { TestProject } from "vitest/node";
import { startMariadb, startRedis, type TestService } from "./helpers/services.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Admin URL of the run's MariaDB (`mysql://user:pass@127.0.0.1:PORT/db`); create a database per file. */
    mysqlUrl: string;
    /** `redis://127.0.0.1:PORT`; tests isolate themselves with unique key prefixes. */
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Servers of one's own (e.g. without apt): TEST_MYSQL_URL's user must be allowed to create databases.
  const { TEST_MYSQL_URL, TEST_REDIS_URL } = process.env;
  if (TEST_MYSQL_URL && TEST_REDIS_URL) {
    project.provide("mysqlUrl", TEST_MYSQL_URL);
    project.provide("redisUrl", TEST_REDIS_URL);
    return async () => {};
  }
  const started = Date.now();
  const [mariadb, redis] = await Promise.allSettled([startMariadb(), startRedis()]);
  const services: TestService[] = [];
  for (const r of [mariadb, redis]) if (r.status === "fulfilled") services.push(r.value);
  const teardown = async () => {
    await Promise.allSettled(services.map((s) => s.destroy()));
  };
  if (mariadb.status === "rejected") {
    await teardown();
    throw mariadb.reason;
  }
  if (redis.status === "rejected") {
    await teardown();
    throw redis.reason;
  }
  project.provide("mysqlUrl", mariadb.value.url);
  project.provide("redisUrl", redis.value.url);
  if (process.env.SERVICES_VERBOSE) console.log(`test services up in ${Date.now() - started} ms`);
  return teardown;
}
