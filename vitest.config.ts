import { defineConfig } from "vitest/config";

// Options every project shares. Projects do not `extends: true` the root: that would run the root's
// globalSetup once more per project (one MariaDB + Redis each); the root's runs once and its provided
// context (mysqlUrl, redisUrl) reaches every project.
const common = {
  testTimeout: 30_000,
  hookTimeout: 120_000, // a Scalable cluster (4 processes) may take long to start on a loaded machine
  pool: "forks" as const,
};

export default defineConfig({
  test: {
    // One MariaDB and one Redis for the run; files read their URLs with inject("mysqlUrl") / inject("redisUrl").
    globalSetup: ["test/global-setup.ts"],
    ...common,
    // 2-core machines: e2e files each start server processes (embedded: 1, scalable: 4); keep parallelism modest.
    maxWorkers: 2,
    projects: [
      // Everything, with the e2e suite against the embedded shape (one all-in-one process on SQLite).
      { test: { ...common, name: "embedded", include: ["test/**/*.test.ts"], env: { E2E_SHAPE: "embedded" } } },
      // The e2e suite again, unchanged, against the Scalable shape: 2 fronts + 2 workers on MariaDB + Redis,
      // clients spread over both fronts (test/helpers/server.ts, cluster.ts).
      { test: { ...common, name: "e2e-scalable", include: ["test/e2e/**/*.test.ts"], env: { E2E_SHAPE: "scalable" } } },
      // The e2e suite again against the embedded shape with PostgreSQL as the store (a database per server).
      { test: { ...common, name: "e2e-postgres", include: ["test/e2e/**/*.test.ts"], env: { E2E_SHAPE: "postgres" } } },
      // And against the AWS shape: the 2 + 2 cluster with STORAGE_TYPE=Aws (SQS, DynamoDB on the run's moto server).
      { test: { ...common, name: "e2e-aws", include: ["test/e2e/**/*.test.ts"], env: { E2E_SHAPE: "aws" } } },
    ],
  },
});
