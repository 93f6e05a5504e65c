// AWS acceptance: bad input at the AWS edge, at process level.
// - Messages that are not jobs of ours, sent straight into a channel's queue, are moved to the queue's DLQ by the
//   worker that receives them (a copy with the reason, the original deleted); the worker goes on serving. The
//   fronts' dead-letter poller then finds them there, cannot name a job, and drops them with a log line.
// - With the job-state table deleted, Enqueue answers FAILED_PRECONDITION naming the table at once (a durable job's
//   row written before that is deleted again: it must not run later); the processes keep running, and once the
//   table is back (as `jobworkerp aws bootstrap` creates it) new jobs run and so do the jobs the outage caught: one
//   already in SQS (left queued by the worker, which backs off) and a scheduled one the clock failed to queue
//   (its grab is handed back, so a later pass queues it).
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureJobStateTable } from "../../worker-container/src/adapters/aws/provision.js";
import { JOB_STATE_TABLE } from "../../worker-container/src/adapters/aws/resources.js";
import { Status, collect, commandOutput, expectRpcError, healthCheck, shArgs } from "../helpers/client.js";
import type { Cluster, Proc } from "../helpers/cluster.js";
import { newClusterState } from "../helpers/cluster.js";
import { createCommandWorker, expectCode, waitUntil } from "../helpers/fixture.js";
import { channelQueue, createChannelQueues, messagesIn, queueUrl, useAwsClients, useHarness } from "./support.js";

const h = useHarness();
const aws = useAwsClients();
const CHANNEL = "aws_edge";

let c: Cluster;
let prefix: string;
beforeAll(async () => {
  const state = await newClusterState(true);
  prefix = state.awsPrefix!;
  await createChannelQueues(aws(), prefix, CHANNEL, 5);
  c = await h.cluster({
    state,
    fronts: 1,
    workers: 1,
    env: { WORKER_CHANNELS: CHANNEL, WORKER_CHANNEL_CONCURRENCIES: "2", WORKER_DEFAULT_CHANNEL_DISABLED: "true" },
  });
});

/** The process's pino lines whose `err.message` matches. */
function errorsLogged(p: Proc, pattern: RegExp): { msg: string; err: string }[] {
  const out: { msg: string; err: string }[] = [];
  for (const line of p.logs().split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const e = JSON.parse(line) as { msg?: string; err?: { message?: string } };
      if (e.err?.message && pattern.test(e.err.message)) out.push({ msg: e.msg ?? "", err: e.err.message });
    } catch {
      /* not a log line */
    }
  }
  return out;
}

async function echoJob(workerId: string): Promise<string> {
  const { response } = await h.api(c.addresses[0]).job.Enqueue({ worker_id: { value: workerId }, args: shArgs("echo $PPID") }, { timeoutMs: 30_000 });
  expect(response.result?.data.status).toBe("SUCCESS");
  return commandOutput(response.result).stdout!;
}

describe("AWS: bad input at the edge", () => {
  it("raw garbage in a channel's queue goes to its DLQ; the worker survives and runs the next job", { timeout: 90_000 }, async () => {
    const [worker] = c.workers;
    const front = c.fronts[0];
    const { name, dlqName } = channelQueue(prefix, CHANNEL);
    const url = await queueUrl(aws(), name);
    const fakeId = String(9_000_000_000_000 + Math.floor(Math.random() * 1_000_000_000));
    const garbage = [
      { body: "this is not a job", reason: "message body is not JSON" },
      { body: JSON.stringify({ v: 2, id: "1", c: CHANNEL, j: "" }), reason: "unknown message version 2" },
      // well-formed envelope, but the job bytes are not a protobuf Job (0xFF 0xFF 0xFF)
      { body: JSON.stringify({ v: 1, id: fakeId, c: CHANNEL, j: "////" }), reason: "job bytes do not decode: premature EOF" },
    ];
    for (const g of garbage) await aws().sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: g.body }));

    // the worker moved each one to the DLQ with its reason...
    for (const g of garbage) {
      const expected = `malformed message on ${name}: ${g.reason}; moved to ${dlqName}`;
      await waitUntil(() => errorsLogged(worker, /^malformed message on /).some((e) => e.err === expected), { timeoutMs: 30_000, what: `worker log: ${expected}` });
    }
    await waitUntil(async () => (await messagesIn(aws(), name)) === 0, { timeoutMs: 30_000, intervalMs: 200, what: `${name} empty` });
    // ...where the dead-letter poller found them: not jobs, so nothing is recorded, only logged and dropped
    await waitUntil(() => errorsLogged(front, /\(moved there by a worker: /).length >= garbage.length, { timeoutMs: 30_000, what: "the front dropped the dead letters" });
    const dropped = errorsLogged(front, /\(moved there by a worker: /);
    expect(dropped.every((e) => /^dead letter \S+ is not a job: dropped$/.test(e.msg)), JSON.stringify(dropped)).toBe(true);
    expect(dropped.map((e) => e.err).sort()).toEqual(
      [
        "message body is not JSON (moved there by a worker: message body is not JSON)",
        "unknown message version 2 (moved there by a worker: unknown message version 2)",
        `job ${fakeId}: premature EOF (moved there by a worker: job bytes do not decode: premature EOF)`,
      ].sort(),
    );
    await waitUntil(async () => (await messagesIn(aws(), dlqName)) === 0, { timeoutMs: 30_000, intervalMs: 200, what: `${dlqName} empty` });

    // the same worker (the channel's only one) still serves
    expect(worker.exited(), "the worker is still running").toBe(false);
    const workerId = await createCommandWorker(h.api(front.address!), { channel: CHANNEL, response_type: "DIRECT" });
    expect(await echoJob(workerId)).toBe(`${worker.pid}\n`);
    expect(errorsLogged(worker, /./).filter((e) => e.msg === "job processing failed"), "no job failed in the worker").toEqual([]);
  });

  it("job-state table deleted: Enqueue answers FAILED_PRECONDITION naming the table; processes run on, and jobs caught by the outage run once it is back", { timeout: 120_000 }, async () => {
    const api = h.api(c.addresses[0]);
    const [worker] = c.workers;
    const table = JOB_STATE_TABLE.name(prefix);
    const stored = { channel: CHANNEL, store_success: true };
    const noResult = await createCommandWorker(api, stored);
    const direct = await createCommandWorker(api, { channel: CHANNEL, response_type: "DIRECT" });
    const refused = await createCommandWorker(api, stored); // gets only an Enqueue refused during the outage
    const resultOf = (id: { value: string }) => async () =>
      (await collect(api.jobResult.FindListByJobId({ job_id: id }))).find((r) => r.data.status === "SUCCESS");

    // caught by the outage: a scheduled job the clock tries to queue while the table is gone (it queues jobs due
    // within 2 s; the table comes back only after that failed), and a job in SQS received while it is gone
    // (queued while the worker is paused)
    const scheduled = await api.job.Enqueue({ worker_id: { value: noResult }, args: shArgs("echo scheduled"), run_after_time: Date.now() + 10_000 });
    process.kill(worker.pid, "SIGSTOP");
    let queued;
    try {
      queued = await api.job.Enqueue({ worker_id: { value: noResult }, args: shArgs("echo queued") });
      await aws().dynamo.send(new DeleteTableCommand({ TableName: table }));
    } finally {
      process.kill(worker.pid, "SIGCONT");
    }

    const named = (e: { details?: string }) => expect(e.details).toContain(`'${table}' does not exist`);
    const attempts = [
      { worker_id: { value: noResult }, args: shArgs("echo never") },
      { worker_id: { value: direct }, args: shArgs("echo never") },
      // durable (a row is written first), and due too late for the clock to touch it during this test
      { worker_id: { value: refused }, args: shArgs("echo never"), run_after_time: Date.now() + 60_000 },
    ];
    for (const req of attempts) {
      const e = await expectRpcError(api.job.Enqueue(req, { timeoutMs: 20_000 }));
      expectCode(e, Status.FAILED_PRECONDITION);
      named(e);
    }
    // reads of job state say the same
    const find = await expectRpcError(api.jobStatus.Find({ value: "1" }, { timeoutMs: 20_000 }));
    expectCode(find, Status.FAILED_PRECONDITION);
    named(find);
    const list = await expectRpcError(collect(api.job.FindQueueList({ channel: CHANNEL }), 20_000));
    expectCode(list, Status.FAILED_PRECONDITION);
    named(list);

    // the processes report the missing table and run on
    const reported = (p: Proc, msg: string) => errorsLogged(p, /^DynamoDB table '.*' does not exist/).some((e) => e.err.includes(`'${table}'`) && e.msg === msg);
    await waitUntil(() => reported(worker, `receiving jobs of channel '${CHANNEL}'`), { timeoutMs: 30_000, what: "the worker reporting the missing table" });
    await waitUntil(() => [...c.fronts, ...c.workers].some((p) => reported(p, "clock pass failed")), { timeoutMs: 30_000, what: "the clock reporting the missing table" });
    expect(await healthCheck(c.addresses[0]), "the front serves").toBe("SERVING");
    expect([...c.fronts, ...c.workers].filter((p) => p.exited()), "processes that exited").toEqual([]);

    await ensureJobStateTable(aws().dynamo, prefix);
    expect(await echoJob(direct)).toBe(`${worker.pid}\n`);
    const later = await api.job.Enqueue({ worker_id: { value: noResult }, args: shArgs("echo later") });
    for (const [job, out] of [[queued!, "queued"], [scheduled, "scheduled"], [later, "later"]] as const) {
      const r = await waitUntil(resultOf(job.response.id), { timeoutMs: 60_000, what: `the ${out} job's result` });
      expect(commandOutput(r).stdout).toBe(`${out}\n`);
      expect((await api.jobStatus.Find(job.response.id)).response.status, `the ${out} job's state is cleared`).toBeUndefined();
    }
    // the refused durable enqueue left nothing behind that could run later
    const left = (await collect(api.job.FindList({}))).filter((j) => j.data.worker_id.value === refused);
    expect(left.map((j) => j.id.value), "jobs left of an Enqueue that answered an error").toEqual([]);
    expect(await collect(api.jobResult.FindListBy({ worker_ids: [{ value: refused }] }))).toEqual([]);
  });
});
