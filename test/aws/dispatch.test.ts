// The dispatch Lambda (the AWS shape's clock) invoked like EventBridge Scheduler invokes it, against MariaDB and the
// emulator's SQS, DynamoDB, Scheduler and ECS APIs (moto server), with a controllable clock: the handler's `now` is
// the test's, so two hours of schedule run in seconds. SQS itself keeps real time, so a delay the tick computes
// from the controllable clock is a real delay; the test that receives a message aligns the two clocks first.
import { create } from "@bufbuild/protobuf";
import { ReceiveMessageCommand, GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { CreateClusterCommand, CreateServiceCommand, DescribeServicesCommand, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import { GetScheduleCommand } from "@aws-sdk/client-scheduler";
import type { Context } from "aws-lambda";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAwsClients } from "../../worker-container/src/adapters/aws/clients.js";
import { createEcsClient, createSchedulerClient } from "../../worker-container/src/adapters/aws/ops_clients.js";
import { workerServiceName } from "../../worker-container/src/adapters/aws/resources.js";
import { ensureClockSchedules, SCHEDULE_RATE } from "../../worker-container/src/adapters/aws/schedules.js";
import { decodeBody } from "../../worker-container/src/adapters/aws/sqs_message.js";
import { openMysqlStore } from "../../worker-container/src/adapters/mysql/index.js";
import type { SqlStore } from "../../worker-container/src/adapters/sql/store.js";
import { sqsQueueName } from "../../worker-container/src/core/channel_config.js";
import { RunnerRegistry } from "../../worker-container/src/core/runners.js";
import { Priority, QueueType } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";
import { WorkerDataSchema } from "../../worker-container/src/gen/jobworkerp/data/worker_pb.js";
import { commandRunner } from "../../worker-container/src/runners/command/index.js";
import { dispatchHandler, type ClockEvent, type DispatchResult } from "../../functions/dispatch.js";
import { buildDispatchDeps } from "../../functions/deps.js";
import { createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { newResourcePrefix } from "../helpers/aws.js";
import { functionConfig, localAws, messagesIn, provisionChannels } from "./support.js";

const MINUTE = 60_000;
const HORIZON_SEC = 62; // the schedule's period plus 2 s (DISPATCH_HORIZON_SEC)
const prefix = newResourcePrefix("disp");
const aws = createAwsClients(localAws());
const ecs = createEcsClient(localAws());
const scheduler = createSchedulerClient(localAws());
let db: TestDatabase;
let store: SqlStore;
let deps: Awaited<ReturnType<typeof buildDispatchDeps>>;
let fakeNow = 0;
let scheduleInput = "";
const handler = dispatchHandler(async () => deps);
const cluster = `${prefix}-cluster`;

/** What Scheduler sends when the schedule fires at `at`: its target input with the context attribute filled in. */
function firing(at: number): ClockEvent {
  return JSON.parse(scheduleInput.replace("<aws.scheduler.scheduled-time>", new Date(at).toISOString())) as ClockEvent;
}

/** One firing of the schedule at `at` on the controllable clock. */
async function tick(at: number): Promise<DispatchResult> {
  fakeNow = at;
  return handler(firing(at), {} as Context);
}

let nextJobId = (1n << 60n) + BigInt(Date.now()) * 1000n;
async function worker(name: string, channel: string, w: { periodicInterval?: number; queueType?: QueueType } = {}): Promise<bigint> {
  return store.createWorker(create(WorkerDataSchema, { name, runnerId: { value: 1n }, channel, periodicInterval: w.periodicInterval ?? 0, queueType: w.queueType ?? QueueType.NORMAL }), Date.now());
}
/** A durable job row, as the front writes it for a scheduled or periodic job. */
async function durableJob(workerId: bigint, enqueueTime: number, runAfterTime: number): Promise<bigint> {
  const id = nextJobId++;
  await store.insertJob(create(JobSchema, { id: { value: id }, data: { workerId: { value: workerId }, args: new Uint8Array(), enqueueTime: BigInt(enqueueTime), runAfterTime: BigInt(runAfterTime), priority: Priority.MEDIUM, timeout: 60_000n } }));
  return id;
}
const queueOf = (channel: string) => sqsQueueName(prefix, channel, Priority.MEDIUM);

beforeAll(async () => {
  db = await createTestDatabase(inject("mysqlUrl"), "dispatch");
  store = await openMysqlStore(db.url);
  await store.migrate(new RunnerRegistry([commandRunner]).builtinRows(Date.now()));
  const channels = [
    { name: "tick", minTasks: 1, maxTasks: 2 },
    { name: "later", minTasks: 0, maxTasks: 2, scaleToZero: true },
    { name: "dbonly", minTasks: 1, maxTasks: 2 },
  ];
  const cfg = functionConfig({ mysqlUrl: db.url, redisUrl: inject("redisUrl"), prefix, channels, extra: { DISPATCH_HORIZON_SEC: String(HORIZON_SEC), ECS_CLUSTER: cluster } });
  await provisionChannels(aws, prefix, cfg.channels);
  // the worker service of "later" sleeps (scale to zero): the tick that queues its job wakes it
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  const td = await ecs.send(new RegisterTaskDefinitionCommand({ family: `${prefix}-worker`, containerDefinitions: [{ name: "worker", image: "jobworkerp:test", memory: 512 }] }));
  await ecs.send(new CreateServiceCommand({ cluster, serviceName: workerServiceName(prefix, "later"), taskDefinition: td.taskDefinition!.taskDefinitionArn, desiredCount: 0 }));
  // the schedule as bootstrap creates it; its target input is what each firing sends
  await ensureClockSchedules(scheduler, { prefix, dispatchFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${prefix}-dispatch`, roleArn: "arn:aws:iam::123456789012:role/scheduler" });
  const schedule = await scheduler.send(new GetScheduleCommand({ Name: `${prefix}-dispatch-clock` }));
  expect(schedule.ScheduleExpression).toBe(SCHEDULE_RATE);
  scheduleInput = schedule.Target!.Input!;
  deps = await buildDispatchDeps(cfg, { aws: localAws(), now: () => fakeNow, log: pino({ level: "silent" }) });
}, 60_000);

afterAll(async () => {
  await deps?.close();
  await store?.close();
  await db?.drop();
  aws.destroy();
  ecs.destroy();
  scheduler.destroy();
});

describe("dispatch Lambda (clock on EventBridge Scheduler)", () => {
  it("fires a 2 s periodic worker 30 ± 1 times per 60 s of clock, firing after firing", async () => {
    const t0 = Date.now() - 3 * 3_600_000; // any time: SQS only sees the delays
    const w = await worker("every-2s", "tick", { periodicInterval: 2000 });
    const jobId = await durableJob(w, t0, t0);
    const counts: number[] = [];
    let total = 0;
    for (let k = 0; k <= 3; k++) {
      const r = await tick(t0 + k * MINUTE);
      total += r.queued;
      expect(await messagesIn(aws.sqs, queueOf("tick"))).toBe(total);
      counts.push(r.queued);
    }
    // the first firing queues its whole window; each later one the next 60 s of occurrences (2 s apart)
    expect(counts[0]).toBe(Math.floor((HORIZON_SEC * 1000) / 2000) + 1);
    for (const n of counts.slice(1)) {
      expect(n).toBeGreaterThanOrEqual(29);
      expect(n).toBeLessThanOrEqual(31);
    }
    // 3 minutes of clock: 90 occurrences (+ the first window's look-ahead), none twice
    expect(total).toBe(Math.floor((3 * MINUTE + HORIZON_SEC * 1000) / 2000) + 1);
    // re-armed by the dispatcher: the row's next run is the first occurrence after the last window
    const row = await store.findJob(jobId);
    expect(Number(row!.data!.runAfterTime)).toBe(t0 + total * 2000);
    // a second firing at the same time finds nothing more to do
    expect((await tick(t0 + 3 * MINUTE)).queued).toBe(0);
    await store.deleteJob(jobId); // stops the schedule (as Delete does), so later firings are the next tests' own
  });

  it("queues a job 2 h in the future when the clock reaches it, not before, with its exact delay; wakes its sleeping service", async () => {
    // Align the controllable clock with real time at the end: the job is due 6 s from now (real), enqueued 2 h of
    // clock before that; firings every minute, the last one 3 s before the job is due.
    const due = Date.now() + 6_000;
    const w = await worker("in-two-hours", "later");
    const jobId = await durableJob(w, due - 2 * 3_600_000, due);
    const last = due - 3_000;
    const firings = Array.from({ length: 120 }, (_, k) => last - (119 - k) * MINUTE);
    for (const at of firings.slice(0, -1)) expect((await tick(at)).queued).toBe(0); // 1 h 59 min of clock: not yet
    expect(await messagesIn(aws.sqs, queueOf("later"))).toBe(0);
    expect(Number((await store.findJob(jobId))!.data!.grabbedUntilTime ?? 0n)).toBe(0);
    const services = async () => (await ecs.send(new DescribeServicesCommand({ cluster, services: [workerServiceName(prefix, "later")] }))).services![0];
    expect((await services()).desiredCount).toBe(0);

    while (Date.now() < last) await new Promise((r) => setTimeout(r, 20)); // the real clock reaches the last firing
    expect((await tick(last)).queued).toBe(1);
    expect((await tick(last)).queued).toBe(0); // grabbed: a repeated firing does not queue it again
    expect((await services()).desiredCount).toBe(1); // scale-from-zero nudge of the channel's service

    const url = (await aws.sqs.send(new GetQueueUrlCommand({ QueueName: queueOf("later") }))).QueueUrl!;
    let received: { at: number; body: string } | undefined;
    const deadline = Date.now() + 30_000;
    while (!received && Date.now() < deadline) {
      const out = await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1, MaxNumberOfMessages: 1 }));
      if (out.Messages?.length) received = { at: Date.now(), body: out.Messages[0].Body! };
    }
    expect(received).toBeDefined();
    // SQS delays are whole seconds, rounded down from (delay - 1 s), and the delay counts from the push (the real
    // time the tick took is taken off): visible 1-2 s before due; the exact time travels in the message and the
    // worker waits for it
    expect(received!.at).toBeGreaterThanOrEqual(due - 2000);
    const body = decodeBody(received!.body);
    expect(body.ok && body.jobId).toBe(jobId);
    expect(body.ok && body.notBefore).toBeGreaterThanOrEqual(due);
    expect(body.ok && body.durable).toBe(true);
  });

  it("queues DB_ONLY jobs, which wait for the clock by definition, on its next firing", async () => {
    const t = Date.now() - 5 * 3_600_000;
    const w = await worker("db-only", "dbonly", { queueType: QueueType.DB_ONLY });
    await durableJob(w, t - 10_000, t - 10_000);
    await durableJob(w, t - 5_000, t - 5_000);
    expect((await tick(t)).queued).toBe(2);
    expect(await messagesIn(aws.sqs, queueOf("dbonly"))).toBe(2);
  });
});
