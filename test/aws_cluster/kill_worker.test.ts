// AWS acceptance: a worker killed mid-job loses nothing, and a paused worker's late result is fenced off.
// - SIGKILL: the killed worker's SQS deliveries stay invisible until their visibility (the lease) runs out, then
//   the surviving worker receives them again; every job ends with exactly one stored SUCCESS result. A job runs
//   twice only if the killed worker had received it, so the jobs run twice are bounded by its concurrency (printed).
// - SIGSTOP: the paused worker's visibility runs out, the other worker claims the job (DynamoDB fencing token + 1)
//   and finishes it. Once resumed, the paused worker finishes its own attempt (its heartbeat finds the lease gone
//   and aborts the run: MAX_RETRY; or SUCCESS if the run ended first) with a DeleteItem conditional on its old
//   token, which fails, so that outcome is neither published nor stored. The store alone would not show it (it
//   keeps one result per attempt, job id + retried, whoever writes it) and nothing is logged, so the test watches
//   the worker's result broadcast: an unfenced late finish publishes a second result of the job.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMAND_RUNNER_ID, StreamTap, collect, commandOutput, shArgs, type JobResult } from "../helpers/client.js";
import type { Cluster, Proc } from "../helpers/cluster.js";
import { uniqueName, waitUntil } from "../helpers/fixture.js";
import { channelQueue, countResults, markedScript, messagesIn, readMarks, resultsOf, tally, useAwsClients, useHarness } from "./support.js";

const h = useHarness();
const aws = useAwsClients();
const KILL_CHANNEL = "aws_kill";
const FENCE_CHANNEL = "aws_fence";
const CONCURRENCY = 4; // per worker on KILL_CHANNEL; FENCE_CHANNEL has one loop per worker
const JOBS = 24;
const LEASE_MS = 2000; // SQS visibility, whole seconds
const dir = mkdtempSync(join(tmpdir(), "jwp-aws-kill-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let c: Cluster;
beforeAll(async () => {
  c = await h.cluster({
    aws: true,
    fronts: 1,
    workers: 2,
    env: {
      JOB_QUEUE_LEASE_MS: String(LEASE_MS),
      WORKER_CHANNELS: `${KILL_CHANNEL},${FENCE_CHANNEL}`,
      WORKER_CHANNEL_CONCURRENCIES: `${CONCURRENCY},1`,
      WORKER_DEFAULT_CHANNEL_DISABLED: "true",
    },
  });
});

const live = () => c.workers.filter((w) => !w.exited());

async function createWorker(channel: string, extra: Record<string, unknown> = {}): Promise<string> {
  const { response } = await h.api(c.addresses[0]).worker.Create({
    name: uniqueName("aws-kill"),
    runner_id: { value: COMMAND_RUNNER_ID },
    response_type: "NO_RESULT",
    store_success: true,
    store_failure: true,
    channel,
    retry_policy: { type: "NONE", interval: 0, max_interval: 0, max_retry: 0, basis: 0 },
    ...extra,
  });
  return response.id.value;
}

describe("AWS: a worker killed or paused mid-job", () => {
  it(`SIGKILL with jobs in flight: all ${JOBS} jobs complete with one stored result each; only jobs the killed worker had taken run twice (≤ its concurrency)`, { timeout: 120_000 }, async () => {
    const [victim, survivor] = live();
    const api = h.api(c.addresses[0]);
    const file = join(dir, "kill.log");
    const workerId = await createWorker(KILL_CHANNEL);
    const marks = Array.from({ length: JOBS }, (_, i) => `job-${i}`);
    const jobIds: string[] = [];
    for (const mark of marks) {
      const { response } = await api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(markedScript(file, mark, "sleep 1.5")) });
      jobIds.push(response.id.value);
    }

    const inFlightOn = (pid: number, m = readMarks(file)) => {
      const ended = new Set(m.ends.filter((r) => r.pid === pid).map((r) => r.mark));
      return m.starts.filter((r) => r.pid === pid && !ended.has(r.mark)).length;
    };
    await waitUntil(
      () => {
        const m = readMarks(file);
        return inFlightOn(victim.pid, m) >= 2 && inFlightOn(survivor.pid, m) >= 1 && m.ends.length >= 4;
      },
      { timeoutMs: 30_000, intervalMs: 20, what: "both workers busy and some jobs finished" },
    );
    const before = readMarks(file);
    await victim.kill();
    const killedAt = Date.now();
    const endedBeforeKill = new Set(before.ends.filter((r) => r.pid === victim.pid).map((r) => r.mark));
    // the victim's runs without an end line before the kill; read again later: a shell spawned right before the
    // kill may write its start line a moment after it (none can start after it)
    const interrupted = () => new Set(readMarks(file).starts.filter((r) => r.pid === victim.pid && !endedBeforeKill.has(r.mark)).map((r) => r.mark));
    h.note(`in flight on the killed worker: ${[...interrupted()].join(" ")}`);

    await waitUntil(async () => (await countResults(api, workerId)) >= JOBS, { timeoutMs: 60_000, intervalMs: 200, what: `${JOBS} stored results` });
    const recoveredMs = Date.now() - killedAt;
    // nothing can run again once the channel's queue holds no message (waiting, delayed or in flight)
    const { name: queueName } = channelQueue(c.state.awsPrefix!, KILL_CHANNEL);
    await waitUntil(async () => (await messagesIn(aws(), queueName)) === 0, { timeoutMs: 30_000, intervalMs: 200, what: `${queueName} empty` });

    const results = await resultsOf(api, workerId);
    expect(Object.fromEntries(tally(results.map((r) => r.data.status))), "every result is SUCCESS").toEqual({ SUCCESS: JOBS });
    const perJob = tally(results.map((r) => r.data.job_id.value));
    expect([...perJob.keys()].sort(), "one result for each job").toEqual([...jobIds].sort());
    expect([...perJob.values()].every((n) => n === 1), "no job has two stored results").toBe(true);
    expect(await collect(api.jobStatus.FindByCondition({ worker_id: { value: workerId } })), "no job state left").toEqual([]);

    const final = readMarks(file);
    const runs = tally(final.starts.map((r) => r.mark));
    expect(marks.filter((m) => !runs.has(m)), "jobs that never ran").toEqual([]);
    expect(final.starts.filter((r) => r.pid !== victim.pid && r.pid !== survivor.pid), "runs by unknown processes").toEqual([]);
    const twice = [...runs].filter(([, n]) => n > 1).map(([m]) => m);
    const cut = interrupted();
    console.log(
      `[aws kill_worker] ${JOBS} jobs, concurrency ${CONCURRENCY}/worker, lease ${LEASE_MS} ms: ${cut.size} in flight on the killed worker, ` +
        `${twice.length} ran twice (${twice.join(" ")}; ${twice.filter((m) => !cut.has(m)).length} of them had ended there but were not acknowledged yet); ` +
        `all results stored ${recoveredMs} ms after the kill`,
    );
    expect(cut.size, "jobs were running on the worker when it was killed").toBeGreaterThan(0);
    expect([...runs.values()].every((n) => n <= 2), "no job ran more than twice").toBe(true);
    // an interrupted job stored no result, so it must have run again (on the survivor)
    expect([...cut].filter((m) => !twice.includes(m)), "interrupted jobs that did not run again").toEqual([]);
    expect(final.starts.filter((r) => cut.has(r.mark) && r.pid === survivor.pid).length).toBe(cut.size);
    // only jobs the victim had received can run twice: at most its concurrency (some may have ended but not been acked)
    const firstRunPid = (mark: string) => final.starts.find((r) => r.mark === mark)!.pid;
    expect(twice.filter((m) => firstRunPid(m) !== victim.pid), "jobs run twice not first run on the killed worker").toEqual([]);
    expect(twice.length, "jobs run twice ≤ the killed worker's concurrency").toBeLessThanOrEqual(CONCURRENCY);
    expect(survivor.exited(), "the surviving worker is still running").toBe(false);
  });

  it("SIGSTOP mid-job: the other worker runs the job again; the resumed worker's late finish is rejected by the fencing token", { timeout: 120_000 }, async () => {
    while (live().length < 2) await c.addWorker();
    const api = h.api(c.addresses[0]);
    const file = join(dir, "fence.log");
    const workerId = await createWorker(FENCE_CHANNEL, { broadcast_results: true });
    const tap = new StreamTap<JobResult>(api.jobResult.ListenByWorker({ worker_id: { value: workerId } }));
    let paused: Proc | undefined;
    try {
      // the stream is subscribed once it carries a result (a warm-up finished before the subscription is missed)
      const resultOf = (jobId: string) => tap.items.find((r) => r.data.job_id.value === jobId);
      await waitUntil(
        async () => {
          const warm = await api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("echo warm") });
          return waitUntil(() => resultOf(warm.response.id.value), { timeoutMs: 3000, what: "the warm-up result" }).catch(() => undefined);
        },
        { timeoutMs: 30_000, intervalMs: 0, what: "the result stream subscribed" },
      );

      // the job's output names the worker process that ran it
      const { response } = await api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(markedScript(file, "fenced", "sleep 3; echo $PPID")) });
      const jobId = response.id.value;
      const first = await waitUntil(() => readMarks(file).starts[0], { timeoutMs: 30_000, intervalMs: 10, what: "the job started" });
      paused = live().find((w) => w.pid === first.pid);
      expect(paused, `the job ran on a worker of the cluster (pid ${first.pid})`).toBeDefined();
      const other = live().find((w) => w !== paused)!;
      process.kill(paused!.pid, "SIGSTOP"); // the worker only: its job's shell runs on in its own process group

      // the lease runs out; the other worker receives, claims and finishes the job
      const second = await waitUntil(() => readMarks(file).starts.find((r) => r.pid !== first.pid), { timeoutMs: 30_000, what: "the job ran again" });
      expect(second.pid).toBe(other.pid);
      const byOther = await waitUntil(() => resultOf(jobId), { timeoutMs: 30_000, what: "the job's result" });
      expect(byOther.data.status).toBe("SUCCESS");
      expect(commandOutput(byOther).stdout).toBe(`${other.pid}\n`);
      // a graceful stop awaits its acks: afterwards only the paused worker serves the channel
      await other.stop();

      process.kill(paused!.pid, "SIGCONT");
      // the paused worker's only loop on the channel finishes its stale attempt before it can take this probe
      const probe = await api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("echo $PPID") });
      const probed = await waitUntil(() => resultOf(probe.response.id.value), { timeoutMs: 30_000, what: "the probe's result" });
      expect(commandOutput(probed).stdout, "the probe ran on the resumed worker").toBe(`${paused!.pid}\n`);

      const ofJob = tap.items.filter((r) => r.data.job_id.value === jobId);
      const seen = tap.items.map((r) => `${r.data.job_id.value}:${r.data.status}`).join(" ");
      expect(ofJob.length, `the job's result was published once, the late finish was fenced off (broadcast: ${seen})`).toBe(1);
      expect(tap.error).toBeNull();
      const stored = await collect(api.jobResult.FindListByJobId({ job_id: { value: jobId } }));
      expect(stored.map((r) => [r.data.status, commandOutput(r).stdout])).toEqual([["SUCCESS", `${other.pid}\n`]]);
      expect((await api.jobStatus.Find({ value: jobId })).response.status, "no job state left").toBeUndefined();
      expect(paused!.exited(), "the resumed worker runs on").toBe(false);
    } finally {
      if (paused && !paused.exited()) process.kill(paused.pid, "SIGCONT");
      tap.close();
    }
  });
});
