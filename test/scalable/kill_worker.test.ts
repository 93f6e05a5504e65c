// Scalable acceptance: a worker SIGKILLed with jobs in flight loses none of them. Its leases expire
// (JOB_QUEUE_LEASE_MS) and the surviving worker runs those jobs again; every job ends with exactly one stored
// SUCCESS result. A job can run twice only if it was in flight on the killed worker, so the number of jobs
// run twice is bounded by that worker's concurrency (it is printed: the issue asks for the figure). A job the
// victim finished and stored but did not acknowledge before the kill also runs again; the store keeps one
// result per attempt, so it still has one stored result.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { COMMAND_RUNNER_ID, shArgs } from "../helpers/client.js";
import { uniqueName, waitUntil } from "../helpers/fixture.js";
import { countResults, queuedOn, readMarks, resultsOf, sleep, tally, useHarness } from "./support.js";

const h = useHarness();
const JOBS = 200;
const CONCURRENCY = 16; // per worker, on the test channel
const CHANNEL = "kill_worker";
const dir = mkdtempSync(join(tmpdir(), "jwp-kill-worker-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe("Scalable: SIGKILL of a worker with jobs in flight", () => {
  it(`all ${JOBS} jobs complete once each in storage; jobs run twice are at most the killed worker's in-flight jobs`, { timeout: 120_000 }, async () => {
    const started = Date.now();
    const c = await h.cluster({
      fronts: 2,
      workers: 2,
      env: {
        WORKER_CHANNELS: CHANNEL,
        WORKER_CHANNEL_CONCURRENCIES: String(CONCURRENCY),
        WORKER_DEFAULT_CHANNEL_DISABLED: "true",
      },
    });
    const [victim, survivor] = c.workers;
    const apis = c.addresses.map((a) => h.api(a));
    const api = apis[1];
    const file = join(dir, "marks.log");

    const workerId = (
      await apis[0].worker.Create({
        name: uniqueName("kill-worker"),
        runner_id: { value: COMMAND_RUNNER_ID },
        response_type: "NO_RESULT",
        store_success: true,
        store_failure: true,
        channel: CHANNEL,
        retry_policy: { type: "NONE", interval: 0, max_interval: 0, max_retry: 0, basis: 0 },
      })
    ).response.id.value;

    // $PPID of the job's shell is the worker process that spawned it.
    const script = (mark: string) => `echo "S ${mark} $PPID" >> '${file}'; sleep 0.7; echo "E ${mark} $PPID" >> '${file}'`;
    const marks = Array.from({ length: JOBS }, (_, i) => `job-${i}`);
    const jobIds: string[] = [];
    for (let i = 0; i < JOBS; i += 20) {
      const ids = await Promise.all(
        marks.slice(i, i + 20).map(async (mark) => {
          // One front mints all ids: two fronts on one host share a snowflake node id (see ids.test.ts).
          const { response } = await apis[0].job.Enqueue({ worker_id: { value: workerId }, args: shArgs(script(mark)) });
          return response.id.value;
        }),
      );
      jobIds.push(...ids);
    }
    expect(new Set(jobIds).size).toBe(JOBS);

    // Kill once the victim is busy (at least half its loops running a job) and some jobs have already finished.
    const inFlightOn = (pid: number, m = readMarks(file)) => {
      const ended = new Set(m.ends.filter((r) => r.pid === pid).map((r) => r.mark));
      return m.starts.filter((r) => r.pid === pid && !ended.has(r.mark)).length;
    };
    await waitUntil(
      () => {
        const m = readMarks(file);
        return inFlightOn(victim.pid, m) >= CONCURRENCY / 2 && inFlightOn(survivor.pid, m) >= 1 && m.ends.length >= 20;
      },
      { timeoutMs: 15_000, intervalMs: 20, what: "both workers busy and some jobs finished" },
    );
    const before = readMarks(file);
    await victim.kill();
    const killedAt = Date.now();
    const endedBeforeKill = new Set(before.ends.filter((r) => r.pid === victim.pid).map((r) => r.mark));
    // Runs of the victim = its start lines without an end line before the kill (counted at the end: a shell
    // spawned right before the kill may write its start line a moment later; none can start after it).
    const inFlightOnVictim = () => readMarks(file).starts.filter((r) => r.pid === victim.pid && !endedBeforeKill.has(r.mark)).length;
    const doneBeforeKill = await countResults(api, workerId);
    h.note(`in flight on the killed worker: ${inFlightOnVictim()}; results right after the kill: ${doneBeforeKill}`);

    await waitUntil(async () => (await countResults(api, workerId)) >= JOBS, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: `${JOBS} stored results`,
    });
    const recoveredMs = Date.now() - killedAt;
    // Let anything that would still run (a duplicate delivery) show up before counting.
    await sleep(2500);
    expect(await queuedOn(api, CHANNEL), "nothing left in the queue").toEqual([]);

    const results = await resultsOf(api, workerId);
    const byStatus = tally(results.map((r) => r.data.status));
    expect(Object.fromEntries(byStatus), "every result is SUCCESS").toEqual({ SUCCESS: JOBS });
    const resultJobs = tally(results.map((r) => r.data.job_id.value));
    expect(resultJobs.size, "one result per job").toBe(JOBS);
    expect([...resultJobs.values()].every((n) => n === 1), "no job has two stored results").toBe(true);
    expect([...resultJobs.keys()].sort()).toEqual([...jobIds].sort());
    expect(await countResults(api, workerId, ["SUCCESS"])).toBe(JOBS);

    const final = readMarks(file);
    const inFlightAtKill = inFlightOnVictim();
    expect(inFlightAtKill, "jobs were running on the worker when it was killed").toBeGreaterThan(0);
    expect(inFlightAtKill).toBeLessThanOrEqual(CONCURRENCY);
    const runs = tally(final.starts.map((r) => r.mark));
    expect(marks.filter((m) => !runs.has(m)), "jobs that never ran").toEqual([]);
    expect(final.starts.filter((r) => r.pid !== victim.pid && r.pid !== survivor.pid), "runs by unknown processes").toEqual([]);
    const twice = [...runs].filter(([, n]) => n > 1);
    // A result id minted twice (two workers on one host share a snowflake node: ids.test.ts) fails the insert
    // and makes the job run again; counted here so such a failure is told apart from a lease problem.
    const idClashes = c.workers.map((w) => (w.logs().match(/job result \d+ already exists/g) ?? []).length).reduce((a, b) => a + b, 0);
    h.note(`result-id clashes logged by the workers: ${idClashes}`);
    const firstRunPid = (mark: string) => final.starts.find((r) => r.mark === mark)!.pid;
    // Figures for the issue.
    console.log(
      `[kill_worker] ${JOBS} jobs, concurrency ${CONCURRENCY}/worker, lease 2000 ms: ${doneBeforeKill} done before the kill, ` +
        `${inFlightAtKill} in flight on the killed worker, ${twice.length} ran twice (${twice.map(([m]) => m).join(" ")}); ` +
        `all results stored ${recoveredMs} ms after the kill; ${idClashes} result-id clashes; file took ${Date.now() - started} ms`,
    );
    expect(twice.every(([, n]) => n === 2), "no job ran more than twice").toBe(true);
    expect(twice.every(([m]) => firstRunPid(m) === victim.pid), "only jobs first run on the killed worker ran again").toBe(true);
    expect(twice.length, "jobs run twice ≤ the killed worker's concurrency").toBeLessThanOrEqual(CONCURRENCY);
    // Jobs interrupted by the kill never stored a result there, so they must have run again on the survivor.
    expect(twice.length, "the interrupted jobs ran again").toBeGreaterThan(0);
    expect(survivor.exited(), "the surviving worker is still running").toBe(false);
  });
});
