// Shared glue for the Scalable-mode failure tests: every cluster, service and client a file starts is
// registered here, their logs are printed when a test fails, and all of it is torn down after the file.
// Tests talk to the system only over gRPC (test/helpers/client.ts) and, where the brief allows, to Redis.
import { readFileSync } from "node:fs";
import { afterAll, afterEach } from "vitest";
import { Api, collect, type JobResult } from "../helpers/client.js";
import { type Cluster, type StartClusterOptions, startCluster } from "../helpers/cluster.js";
import { killAllProcs } from "../helpers/proc.js";
import type { TestService } from "../helpers/services.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Short leases and a fast clock, so failures are noticed and repaired within a test's time budget. */
export const FAST_ENV: Record<string, string> = {
  JOB_QUEUE_LEASE_MS: "2000",
  JOB_QUEUE_FETCH_INTERVAL: "200",
  LOG_LEVEL: "info",
};

export interface Harness {
  /** startCluster with FAST_ENV under the caller's env; the cluster is killed after the file. */
  cluster(opts?: StartClusterOptions): Promise<Cluster>;
  /** A client for `address` (closed after the file). */
  api(address: string): Api;
  /** A service (own Redis / MariaDB) to destroy after the file. */
  own<T extends TestService>(svc: T): T;
  /** Extra text printed when a test fails (e.g. figures gathered so far). */
  note(text: string): void;
}

export function useHarness(): Harness {
  const clusters: Cluster[] = [];
  const apis: Api[] = [];
  const services: TestService[] = [];
  const notes: string[] = [];
  afterEach((ctx) => {
    if (ctx.task.result?.state === "fail") {
      for (const [i, c] of clusters.entries()) console.error(`=== cluster #${i + 1} (${ctx.task.name}) ===\n${c.logs().slice(-20_000)}`);
      if (notes.length) console.error(`=== notes ===\n${notes.join("\n")}`);
    }
    notes.length = 0;
  });
  afterAll(async () => {
    apis.forEach((a) => a.close());
    await Promise.allSettled(clusters.map((c) => c.kill()));
    await killAllProcs();
    await Promise.allSettled(services.map((s) => s.destroy()));
  });
  return {
    async cluster(opts = {}) {
      const c = await startCluster({ readyTimeoutMs: 60_000, ...opts, env: { ...FAST_ENV, ...opts.env } });
      clusters.push(c);
      return c;
    },
    api(address) {
      const a = new Api(address);
      apis.push(a);
      return a;
    },
    own(svc) {
      services.push(svc);
      return svc;
    },
    note(text) {
      notes.push(text);
    },
  };
}

/** Every stored result of a worker (FindListBy pages of 1000, oldest first). */
export async function resultsOf(api: Api, workerId: string, extra: Record<string, unknown> = {}): Promise<JobResult[]> {
  const out: JobResult[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await collect(
      api.jobResult.FindListBy({
        worker_ids: [{ value: workerId }],
        limit: 1000,
        offset,
        sort_by: "JOB_RESULT_SORT_FIELD_ID",
        ascending: true,
        ...extra,
      }),
    );
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

/** CountBy for one worker and (optionally) statuses. */
export async function countResults(api: Api, workerId: string, statuses?: string[]): Promise<number> {
  const { response } = await api.jobResult.CountBy({ worker_ids: [{ value: workerId }], ...(statuses ? { statuses } : {}) });
  return Number(response.total);
}

/** Jobs waiting in a channel's queue, as a front sees them. */
export async function queuedOn(api: Api, channel: string): Promise<string[]> {
  const items = await collect(api.job.FindQueueList({ channel, limit: 10_000 }));
  return items.map((i) => i.job.id.value);
}

/** Occurrences per value. */
export function tally<T>(values: T[]): Map<T, number> {
  const m = new Map<T, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

export interface Run {
  mark: string;
  pid: number;
}

/** Lines "S <mark> <worker pid>" at a run's start and "E <mark> <worker pid>" at its end, written by job scripts. */
export function readMarks(file: string): { starts: Run[]; ends: Run[] } {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    /* nothing ran yet */
  }
  const starts: Run[] = [];
  const ends: Run[] = [];
  for (const line of text.split("\n")) {
    const [kind, mark, pid] = line.trim().split(" ");
    if (!mark) continue;
    (kind === "S" ? starts : ends).push({ mark, pid: Number(pid) });
  }
  return { starts, ends };
}
