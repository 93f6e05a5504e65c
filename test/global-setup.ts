// Vitest globalSetup: one MariaDB, one Redis, one PostgreSQL and one moto server for the whole run (real processes on free
// ports, data in a temp dir), handed to test files as URLs through provide()/inject(); and Podman's Docker API
// for the DOCKER runner (its socket as `dockerHost`).
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { startMoto } from "./helpers/moto.js";
import { startPodman, TEST_IMAGE } from "./helpers/podman.js";
import { startMariadb, startPostgres, startRedis, type TestService } from "./helpers/services.js";

const execFileAsync = promisify(execFile);

declare module "vitest" {
  export interface ProvidedContext {
    /** The run's pre-bundled server entry (test/helpers/proc.ts serverEntry); "" to run the sources through tsx. */
    serverBundle: string;
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
    /** Admin URL of the run's PostgreSQL (`postgres://postgres@127.0.0.1:PORT/postgres`; "" when it could not start: see postgresError). */
    postgresUrl: string;
    /** Why PostgreSQL is unavailable; the tests that use it fail with it (test/helpers/databases.ts). */
    postgresError: string;
    /** Local AWS endpoint (moto server; TEST_AWS_ENDPOINT_URL overrides); "" when it could not start: see awsError. */
    awsEndpoint: string;
    /** Why the AWS endpoint is unavailable; the AWS tests fail with it. */
    awsError: string;
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

/** PostgreSQL for the whole run (TEST_POSTGRES_URL: a server of one's own, whose user may create databases). */
async function providePostgres(project: TestProject): Promise<() => Promise<void>> {
  project.provide("postgresError", "");
  if (process.env.TEST_POSTGRES_URL) {
    project.provide("postgresUrl", process.env.TEST_POSTGRES_URL);
    return async () => {};
  }
  try {
    const postgres = await startPostgres();
    project.provide("postgresUrl", postgres.url);
    return postgres.destroy;
  } catch (e) {
    project.provide("postgresUrl", "");
    project.provide("postgresError", `PostgreSQL could not start: ${(e as Error).message}`);
    return async () => {};
  }
}

/** moto server for the whole run (SQS, DynamoDB...); tests isolate themselves with resource prefixes. */
async function provideAws(project: TestProject): Promise<() => Promise<void>> {
  project.provide("awsError", "");
  if (process.env.TEST_AWS_ENDPOINT_URL) {
    project.provide("awsEndpoint", process.env.TEST_AWS_ENDPOINT_URL);
    return async () => {};
  }
  try {
    const moto = await startMoto();
    project.provide("awsEndpoint", moto.endpoint);
    return moto.stop;
  } catch (e) {
    project.provide("awsEndpoint", "");
    project.provide("awsError", `moto server could not start: ${(e as Error).message}`);
    return async () => {};
  }
}

/**
 * The server bundled once for the run (worker-container/bundle.mjs, as the container image runs it), in a directory
 * of the run's own inside the repo (the bundle locates proto texts and thread entries relative to itself).
 * TEST_SERVER_SOURCES=true runs the servers from the sources through tsx instead.
 */
async function provideServerBundle(project: TestProject): Promise<() => Promise<void>> {
  if ((process.env.TEST_SERVER_SOURCES ?? "").toLowerCase() === "true") {
    project.provide("serverBundle", "");
    return async () => {};
  }
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const dir = join(root, ".test-dist", `run-${process.pid}-${Date.now()}`);
  await execFileAsync(process.execPath, [join(root, "worker-container", "bundle.mjs"), dir]);
  project.provide("serverBundle", join(dir, "jobworkerp.mjs"));
  return () => rm(dir, { recursive: true, force: true });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stopBundle = await provideServerBundle(project);
  // Started side by side; provideDocker and providePostgres never reject.
  const [stopDocker, stopPostgres, stopAws, services] = await Promise.all([
    provideDocker(project),
    providePostgres(project),
    provideAws(project),
    setupDatabases(project).then((stop) => ({ stop }), (error: unknown) => ({ error })),
  ]);
  if ("error" in services) {
    await Promise.allSettled([stopDocker(), stopPostgres(), stopAws(), stopBundle()]);
    throw services.error;
  }
  return async () => {
    await Promise.allSettled([services.stop(), stopDocker(), stopPostgres(), stopAws(), stopBundle()]);
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
