// AWS acceptance: a job that crashes its worker on every delivery ends in the channel's DLQ and is recorded as a
// stored failed result with its status cleared. The job's shell SIGKILLs its parent, the worker process, so each
// delivery kills one worker: two run from the start, and the test starts another whenever none is left. The
// channel's queues are created here with maxReceiveCount 2 (a deployment's channels config sets it): after 2
// deliveries the next receive moves the message to the DLQ, where the fronts' dead-letter poller
// (AWS_LOCAL_FUNCTIONS, the dlq-recorder Lambda's work) stores a MAX_RETRY result, clears the job state and
// publishes the result to listeners.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { collect, commandOutput, outputText, shArgs } from "../helpers/client.js";
import { newClusterState } from "../helpers/cluster.js";
import { createCommandWorker, listen, waitUntil } from "../helpers/fixture.js";
import { channelQueue, createChannelQueues, messagesIn, useAwsClients, useHarness } from "./support.js";

const h = useHarness();
const aws = useAwsClients();
const CHANNEL = "aws_crash";
const MAX_RECEIVE_COUNT = 2;
const dir = mkdtempSync(join(tmpdir(), "jwp-aws-dlq-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("AWS: a job that keeps crashing its worker", () => {
  it(`ends in the DLQ after ${MAX_RECEIVE_COUNT} deliveries: a stored MAX_RETRY result, no job state, Listen gets it`, { timeout: 120_000 }, async () => {
    const state = await newClusterState(true);
    await createChannelQueues(aws(), state.awsPrefix!, CHANNEL, MAX_RECEIVE_COUNT);
    const env = { WORKER_CHANNELS: CHANNEL, WORKER_CHANNEL_CONCURRENCIES: "1", WORKER_DEFAULT_CHANNEL_DISABLED: "true" };
    const c = await h.cluster({ state, fronts: 1, workers: 2, env });
    const api = h.api(c.addresses[0]);
    const file = join(dir, "crashes.log");
    // store_failure off: a dead letter is stored whatever the worker says (nothing else would tell what happened)
    const workerId = await createCommandWorker(api, { channel: CHANNEL, broadcast_results: true, store_success: true, store_failure: false });
    const { response } = await api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`echo $PPID >> '${file}'; kill -9 $PPID; sleep 5`) });
    const jobId = response.id.value;
    const enqueuedAt = Date.now();
    let starts = 0;
    const listened = listen(api, jobId, workerId, 90_000);
    listened.catch(() => undefined); // awaited below

    const crashed = () =>
      readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l)
        .map(Number);
    // a worker whenever none is left; one killed before it reported ready is one more crash, not a failure
    const stored = await waitUntil(
      async () => {
        const results = await collect(api.jobResult.FindListByJobId({ job_id: { value: jobId } }));
        if (results.length) return results;
        if (c.workers.every((w) => w.exited())) {
          starts++;
          await c.addWorker().catch((e: Error) => expect(e.message).toMatch(/exited before becoming ready/));
        }
        return undefined;
      },
      { timeoutMs: 90_000, intervalMs: 200, what: "the dead letter recorded" },
    );
    const result = await listened;
    console.log(`[aws dead_letter] recorded ${Date.now() - enqueuedAt} ms after the enqueue; ${starts} workers started after the first 2`);

    expect(stored.length, "one stored result").toBe(1);
    expect(stored[0].data.status).toBe("MAX_RETRY");
    expect(outputText(stored[0])).toContain("dead-letter queue");
    expect(result.data.job_id.value, "Listen got the job's result").toBe(jobId);
    expect(result.data.status).toBe("MAX_RETRY");
    expect(result.id.value).toBe(stored[0].id.value);
    expect((await api.jobStatus.Find({ value: jobId })).response.status, "the job's status is cleared").toBeUndefined();
    expect(await collect(api.jobStatus.FindByCondition({ worker_id: { value: workerId } }))).toEqual([]);

    // each delivery ran the job once, in a worker of the cluster that it killed
    const pids = crashed();
    expect(pids.length, `deliveries that ran the job (pids ${pids.join(" ")})`).toBe(MAX_RECEIVE_COUNT);
    expect(new Set(pids).size).toBe(MAX_RECEIVE_COUNT);
    // (a worker killed by the job before it reported ready is not in c.workers: ask the system for the pid)
    const gone = (pid: number) => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    };
    expect(pids.filter((pid) => !gone(pid)), "workers the job did not kill").toEqual([]);
    const { name, dlqName } = channelQueue(c.state.awsPrefix!, CHANNEL);
    expect(await messagesIn(aws(), name), "the channel's queue is empty").toBe(0);
    await waitUntil(async () => (await messagesIn(aws(), dlqName)) === 0, { timeoutMs: 30_000, intervalMs: 200, what: "the DLQ emptied by the recorder" });
    expect(c.fronts[0].logs()).toMatch(new RegExp(`"jobId":"${jobId}".*"msg":"job reached its dead-letter queue: recorded as failed"`));

    // the channel goes on serving: a worker is up (the last one, which moved the message to the DLQ) and runs jobs
    const alive = c.workers.filter((w) => !w.exited());
    expect(alive.length).toBe(1);
    expect(pids).not.toContain(alive[0].pid);
    const ok = await createCommandWorker(api, { channel: CHANNEL, response_type: "DIRECT" });
    const after = await api.job.Enqueue({ worker_id: { value: ok }, args: shArgs("echo $PPID") }, { timeoutMs: 30_000 });
    expect(after.response.result?.data.status).toBe("SUCCESS");
    expect(commandOutput(after.response.result).stdout).toBe(`${alive[0].pid}\n`);
  });
});
