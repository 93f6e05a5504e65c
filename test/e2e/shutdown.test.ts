// Graceful shutdown loses no job: SIGTERM stops leasing, lets in-flight jobs (and DIRECT calls) finish,
// saves still-queued jobs in SQLite, exits 0; the next start on the same file runs the saved jobs.
import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Api, type JobResult, collect, commandOutput, shArgs } from "../helpers/client.js";
import { createCommandWorker, serverApi, sleep, waitUntil } from "../helpers/fixture.js";
import { type ServerHandle, startServer } from "../helpers/server.js";

const servers: ServerHandle[] = [];
const apis: Api[] = [];
afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") {
    servers.forEach((s, i) => console.error(`--- server #${i + 1} output (last 8000 chars) ---\n${s.logs().slice(-8000)}`));
  }
});
afterAll(async () => {
  apis.forEach((a) => a.close());
  for (const s of servers) await s.stop("SIGTERM", 5000);
});

async function start(opts: Parameters<typeof startServer>[0]): Promise<[ServerHandle, Api]> {
  const s = await startServer(opts);
  servers.push(s);
  const api = serverApi(s);
  apis.push(api);
  return [s, api];
}

const resultsOf = (api: Api, workerId: string) => collect(api.jobResult.FindListBy({ worker_ids: [{ value: workerId }], limit: 1000 }));

// State shared by the two steps (SIGTERM, then restart on the same file).
const S = {} as {
  s1: ServerHandle;
  log: string;
  inflightWorker: string;
  inflightJob: string;
  serialWorker: string;
  blockerJob: string;
  queuedJobs: string[];
  directWorker: string;
  directJob: string;
  laterWorker: string;
  laterJob: string;
};

describe("graceful shutdown (SIGTERM)", () => {
  it("lets in-flight jobs finish (an in-flight DIRECT call gets its result), runs no queued job, and exits 0", async () => {
    const [s1, api] = await start({ env: { WORKER_CHANNELS: "serial", WORKER_CHANNEL_CONCURRENCIES: "1" } });
    S.s1 = s1;
    S.log = path.join(s1.tmpDir, "ran.log");
    const directStarted = path.join(s1.tmpDir, "direct.started");

    S.inflightWorker = await createCommandWorker(api, { response_type: "NO_RESULT", store_success: true });
    S.serialWorker = await createCommandWorker(api, { response_type: "NO_RESULT", store_success: true, channel: "serial" });
    S.directWorker = await createCommandWorker(api, { response_type: "DIRECT", store_success: true });
    // a DB_ONLY job on a channel this first process does not serve: it waits in SQLite
    S.laterWorker = await createCommandWorker(api, { response_type: "NO_RESULT", store_success: true, queue_type: "DB_ONLY", channel: "later" });

    const enqueue = async (workerId: string, script: string) =>
      (await api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(script) })).response.id.value;
    S.inflightJob = await enqueue(S.inflightWorker, `echo inflight-start >> '${S.log}'; sleep 1; echo inflight`);
    S.blockerJob = await enqueue(S.serialWorker, `echo blocker-start >> '${S.log}'; sleep 1; echo blocker`);
    for (const id of [S.inflightJob, S.blockerJob]) {
      await waitUntil(async () => (await api.jobStatus.Find({ value: id })).response.status === "RUNNING", {
        timeoutMs: 5000,
        what: `job ${id} RUNNING`,
      });
    }
    // three jobs queued behind the blocker on the concurrency-1 channel
    S.queuedJobs = [];
    for (const n of [1, 2, 3]) S.queuedJobs.push(await enqueue(S.serialWorker, `echo q${n} >> '${S.log}'; echo q${n}`));
    for (const id of S.queuedJobs) expect((await api.jobStatus.Find({ value: id })).response.status).toBe("PENDING");
    S.laterJob = await enqueue(S.laterWorker, `echo later >> '${S.log}'; echo later`);

    // a DIRECT call in flight
    const direct = api.job.Enqueue(
      { worker_id: { value: S.directWorker }, args: shArgs(`touch '${directStarted}'; sleep 1; echo direct`) },
      { timeoutMs: 15_000 },
    );
    direct.catch(() => undefined); // awaited below
    await waitUntil(() => fs.existsSync(directStarted), { timeoutMs: 5000, what: "DIRECT job started" });

    const t0 = Date.now();
    const code = await s1.stop("SIGTERM", 10_000);
    const stopMs = Date.now() - t0;
    expect(code, `exit code after SIGTERM\n${s1.logs().slice(-4000)}`).toBe(0);
    expect(stopMs, "shutdown waited for the running jobs").toBeGreaterThanOrEqual(300);

    const { response } = await direct;
    expect(response.result, "the DIRECT call got its result").toBeDefined();
    expect(response.result!.data.status).toBe("SUCCESS");
    expect(commandOutput(response.result).stdout).toBe("direct\n");
    S.directJob = response.id.value;

    // in-flight jobs ran to their end; the queued ones and the DB_ONLY job on the unserved channel did not run
    const ran = fs.readFileSync(S.log, "utf8").trim().split("\n").sort();
    expect(ran).toEqual(["blocker-start", "inflight-start"]);
  });

  it("after restarting on the same SQLite file: in-flight results are stored and the queued jobs run once each (none lost)", async () => {
    expect(S.s1?.exited(), "step 1 must have stopped the first server").toBe(true);
    const t0 = Date.now();
    const [, api] = await start({
      sqlitePath: S.s1.sqlitePath,
      env: { WORKER_CHANNELS: "serial,later", WORKER_CHANNEL_CONCURRENCIES: "1,1" },
    });

    // results of the jobs that were running at SIGTERM
    const inflight = await resultsOf(api, S.inflightWorker);
    expect(inflight.map((r) => r.data.job_id.value), "in-flight NO_RESULT job's stored result").toEqual([S.inflightJob]);
    expect(inflight[0].data.status).toBe("SUCCESS");
    expect(commandOutput(inflight[0]).stdout).toBe("inflight\n");
    expect(Number(inflight[0].data.end_time)).toBeLessThan(t0);
    const direct = await resultsOf(api, S.directWorker);
    expect(direct.map((r) => r.data.job_id.value), "in-flight DIRECT job's stored result").toEqual([S.directJob]);

    // the queued jobs were saved and run after the restart, in their order, once each
    const serial = await waitUntil(
      async () => {
        const rs = await resultsOf(api, S.serialWorker);
        return rs.length >= 4 ? rs : null;
      },
      { timeoutMs: 8000, what: "blocker + 3 queued jobs' results" },
    );
    const later = await waitUntil(async () => (await resultsOf(api, S.laterWorker))[0], {
      timeoutMs: 5000,
      what: "the DB_ONLY job's result once its channel is served",
    });
    await sleep(300); // a duplicate run would show up by now
    const all = await resultsOf(api, S.serialWorker);
    expect(all.length, "no job ran twice").toBe(4);
    const byJob = new Map<string, JobResult>(serial.map((r) => [r.data.job_id.value, r]));
    const blocker = byJob.get(S.blockerJob);
    expect(blocker?.data.status).toBe("SUCCESS");
    expect(commandOutput(blocker).stdout).toBe("blocker\n");
    expect(Number(blocker!.data.end_time)).toBeLessThan(t0);
    S.queuedJobs.forEach((id, i) => {
      const r = byJob.get(id);
      expect(r, `queued job q${i + 1} (${id}) was lost`).toBeDefined();
      expect(r!.data.status).toBe("SUCCESS");
      expect(commandOutput(r).stdout).toBe(`q${i + 1}\n`);
      expect(Number(r!.data.start_time), "ran after the restart").toBeGreaterThanOrEqual(t0);
    });
    const starts = S.queuedJobs.map((id) => Number(byJob.get(id)!.data.start_time));
    expect([...starts].sort((a, b) => a - b), "FIFO order kept").toEqual(starts);
    expect(later.data.job_id.value).toBe(S.laterJob);
    expect(commandOutput(later).stdout).toBe("later\n");
    expect((await resultsOf(api, S.laterWorker)).length).toBe(1);

    const ran = fs.readFileSync(S.log, "utf8").trim().split("\n");
    expect(ran.slice(2)).toEqual(expect.arrayContaining(["q1", "q2", "q3", "later"]));
    expect(ran.length, `each job ran once: ${ran.join(",")}`).toBe(6);

    // nothing left behind: no job rows, nothing restorable
    for (const id of [...S.queuedJobs, S.laterJob, S.inflightJob, S.blockerJob]) {
      await waitUntil(async () => (await api.job.Find({ value: id })).response.data === undefined, {
        timeoutMs: 2000,
        what: `job ${id} gone`,
      });
    }
    expect(await collect(api.jobRestore.FindAll({ include_grabbed: true }))).toEqual([]);
  });
});

describe("crash (SIGKILL)", () => {
  it("WITH_BACKUP and DB_ONLY jobs waiting on an unserved channel survive a SIGKILL and run after the restart", async () => {
    const [s1, api1] = await start({});
    const backup = await createCommandWorker(api1, { queue_type: "WITH_BACKUP", store_success: true, channel: "after_crash" });
    const dbOnly = await createCommandWorker(api1, { queue_type: "DB_ONLY", store_success: true, channel: "after_crash" });
    const b = (await api1.job.Enqueue({ worker_id: { value: backup }, args: shArgs("echo backup") })).response.id.value;
    const d = (await api1.job.Enqueue({ worker_id: { value: dbOnly }, args: shArgs("echo db-only") })).response.id.value;
    await sleep(300); // let the clock move them to the (unserved) in-memory queue: only the store keeps them now
    await s1.kill();

    const [, api2] = await start({ sqlitePath: s1.sqlitePath, env: { WORKER_CHANNELS: "after_crash" } });
    for (const [workerId, jobId, out] of [
      [backup, b, "backup\n"],
      [dbOnly, d, "db-only\n"],
    ]) {
      const r = await waitUntil(async () => (await resultsOf(api2, workerId))[0], { timeoutMs: 5000, what: `result of job ${jobId}` });
      expect(r.data.job_id.value).toBe(jobId);
      expect(r.data.status).toBe("SUCCESS");
      expect(commandOutput(r).stdout).toBe(out);
    }
  });
});
