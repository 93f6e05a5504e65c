// Vitest glue: one server per test file, an Api client, server logs printed when a test fails.
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import {
  Api,
  type ApiOptions,
  COMMAND_RUNNER_ID,
  type JobResult,
  type WorkerDataIn,
  Status,
  codeName,
  healthCheck,
} from "./client.js";
import { type ServerHandle, type StartServerOptions, startServer } from "./server.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (returned) or the timeout passes (throws). */
export async function waitUntil<T>(fn: () => Promise<T> | T, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${opts.what ?? "condition"} (last: ${last instanceof Error ? last.message : String(last)})`);
    }
    await sleep(opts.intervalMs ?? 50);
  }
}

let seq = 0;
/** A worker name unique within the run. */
export const uniqueName = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;

export interface ServerFixture {
  server: ServerHandle;
  api: Api;
}

/** An Api for `server`'s clients: its `clientTarget` (scalable: every front, round-robin) or its address. */
export function serverApi(server: ServerHandle, opts: ApiOptions = {}): Api {
  return new Api(server.clientTarget ?? server.address, {
    ...opts,
    channelOptions: { ...server.clientChannelOptions, ...opts.channelOptions },
  });
}

/**
 * Starts a server for this test file (beforeAll), stops it (afterAll, expecting a clean exit),
 * and prints its output when a test fails. Access `.server` / `.api` inside tests.
 */
export function useServer(opts: StartServerOptions & { token?: string } = {}): ServerFixture {
  const fx = {} as ServerFixture;
  beforeAll(async () => {
    fx.server = await startServer(opts);
    fx.api = serverApi(fx.server, { token: opts.token });
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === "fail" && fx.server) {
      const out = fx.server.logs();
      console.error(`--- server output (${ctx.task.name}), last 8000 chars ---\n${out.slice(-8000)}\n--- end server output ---`);
    }
  });
  afterAll(async () => {
    fx.api?.close();
    if (fx.server) await fx.server.stop("SIGTERM", 5000);
  });
  return fx;
}

/** Proves the server still serves: health SERVING (scalable: on every front) and a WorkerService.CountBy round trip. */
export async function expectAlive(fx: ServerFixture): Promise<void> {
  expect(fx.server.exited(), "server process exited").toBe(false);
  for (const address of fx.server.cluster?.addresses ?? [fx.server.address]) expect(await healthCheck(address)).toBe("SERVING");
  const { response } = await fx.api.worker.CountBy({});
  expect(Number(response.total)).toBeGreaterThanOrEqual(0);
}

/** Creates a COMMAND worker (defaults: NO_RESULT, no retry) and returns its id (string). */
export async function createCommandWorker(api: Api, data: WorkerDataIn = {}): Promise<string> {
  const { response } = await api.worker.Create({
    name: uniqueName("cmd"),
    description: "e2e",
    runner_id: { value: COMMAND_RUNNER_ID },
    response_type: "NO_RESULT",
    retry_policy: { type: "NONE", interval: 0, max_interval: 0, max_retry: 0, basis: 0 },
    ...data,
  });
  expect(Number(response.id?.value)).toBeGreaterThan(0);
  return response.id.value;
}

/** Listen for a job's result (worker must have broadcast_results). */
export async function listen(api: Api, jobId: string, workerId: string, timeoutMs = 10_000): Promise<JobResult> {
  const { response } = await api.jobResult.Listen(
    { job_id: { value: jobId }, worker_id: { value: workerId }, timeout: timeoutMs },
    { timeoutMs: timeoutMs + 2000 },
  );
  return response;
}

/** Asserts an error is a gRPC error with one of the given codes (message shows the actual code). */
export function expectCode(err: { code?: number; details?: string }, ...codes: number[]): void {
  expect(
    codes.map(codeName),
    `expected ${codes.map(codeName).join("|")}, got ${codeName(err.code)}: ${err.details ?? ""}`,
  ).toContain(codeName(err.code));
}

export { Status };
