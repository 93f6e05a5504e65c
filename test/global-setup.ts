// Vitest globalSetup: one MariaDB and one Redis for the whole run (real processes on free ports, data in a
// temp dir), handed to test files as URLs through provide()/inject(); and Podman's Docker API for the DOCKER
// runner (its socket as `dockerHost`).
import type { TestProject } from "vitest/node";
import { startPodman, TEST_IMAGE } from "./helpers/podman.js";
import { startMariadb, startRedis, type TestService } from "./helpers/services.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Admin URL of the run's MariaDB (`mysql://user:pass@127.0.0.1:PORT/db`); create a database per file. */
    mysqlUrl: string;
    /** `redis://127.0.0.1:PORT`; tests isolate themselves with unique key prefixes. */
    redisUrl: string;
    /** DOCKER_HOST of the run's Podman service ("" when it could not start: see dockerError). */
    dockerHost: string;
    /** Why Podman is unavailable; DOCKER tests fail with it (other tests don't need Podman). */
    dockerError: string;
    /** Local image in that engine (busybox: sh, echo, cat, sleep, env, true, false, id, pwd, ls). */
    dockerImage: string;
  }
}

/** Podman for the whole run; its failure fails only the tests that use it. */
async function provideDocker(project: TestProject): Promise<() => Promise<void>> {
  // An engine of one's own: TEST_DOCKER_HOST (+ TEST_DOCKER_IMAGE, an image that has busybox's applets).
  const { TEST_DOCKER_HOST, TEST_DOCKER_IMAGE } = process.env;
  project.provide("dockerError", "");
  if (TEST_DOCKER_HOST) {
    project.provide("dockerHost", TEST_DOCKER_HOST);
    project.provide("dockerImage", TEST_DOCKER_IMAGE ?? TEST_IMAGE);
    return async () => {};
  }
  try {
    const podman = await startPodman();
    project.provide("dockerHost", podman.dockerHost);
    project.provide("dockerImage", podman.image);
    return podman.destroy;
  } catch (e) {
    project.provide("dockerHost", "");
    project.provide("dockerImage", TEST_IMAGE);
    project.provide("dockerError", `Podman's Docker API could not start: ${(e as Error).message}`);
    return async () => {};
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Started side by side; provideDocker never rejects.
  const [stopDocker, services] = await Promise.all([provideDocker(project), setupDatabases(project).then((stop) => ({ stop }), (error: unknown) => ({ error }))]);
  if ("error" in services) {
    await stopDocker();
    throw services.error;
  }
  return async () => {
    await Promise.allSettled([services.stop(), stopDocker()]);
  };
}

async function setupDatabases(project: TestProject): Promise<() => Promise<void>> {
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
