// The dlq-recorder Lambda against real dead letters: jobs are queued with the SQS job queue's own message format on
// a moto queue whose redrive moves a message to its DLQ after the channel's maxReceiveCount deliveries; a "worker"
// receives them and dies before deleting (ReceiveMessage with visibility 0: the message is back at once), until SQS
// moves them. The messages received from the DLQ become the Lambda's SQS event. MariaDB stores the results, DynamoDB
// holds the job states, Redis carries the published results.
import { create } from "@bufbuild/protobuf";
import { GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { buildRecorderDeps } from "../../functions/deps.js";
import { dlqRecorderHandler, type RecorderDeps } from "../../functions/dlq_recorder.js";
import { createAwsClients } from "../../worker-container/src/adapters/aws/clients.js";
import { DynamoJobState } from "../../worker-container/src/adapters/aws/dynamo_job_state.js";
import { SqsJobQueue, type SpillStore } from "../../worker-container/src/adapters/aws/sqs_job_queue.js";
import { openMysqlStore } from "../../worker-container/src/adapters/mysql/index.js";
import { RedisResultBus } from "../../worker-container/src/adapters/redis/result_bus.js";
import type { SqlStore } from "../../worker-container/src/adapters/sql/store.js";
import type { FunctionConfig } from "../../worker-container/src/cli/config.js";
import { sqsQueueName } from "../../worker-container/src/core/channel_config.js";
import { statusEntry } from "../../worker-container/src/core/job_front.js";
import { RunnerRegistry } from "../../worker-container/src/core/runners.js";
import { Priority, QueueType, ResponseType, ResultStatus } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema, type Job } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";
import { WorkerDataSchema, type Worker } from "../../worker-container/src/gen/jobworkerp/data/worker_pb.js";
import { commandRunner } from "../../worker-container/src/runners/command/index.js";
import { newResourcePrefix } from "../helpers/aws.js";
import { createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { functionConfig, localAws, provisionChannels } from "./support.js";

const MAX_RECEIVES = 2;
const prefix = newResourcePrefix("dlq");
const aws = createAwsClients(localAws());
let db: TestDatabase;
let store: SqlStore;
let cfg: FunctionConfig;
let state: DynamoJobState;
let queue: SqsJobQueue;
let redis: Redis;
let bus: RedisResultBus;
let worker: Worker;
const deps: (RecorderDeps & { close(): Promise<void> })[] = [];
const silent = pino({ level: "silent" });

/** Spilled job bytes in Redis (how the deployment backs its spill store is the composition's choice). */
const redisSpill = (r: Redis): SpillStore => ({
  put: async (k, b) => void (await r.set(`${prefix}:spill:${k}`, Buffer.from(b))),
  get: async (k) => (await r.getBuffer(`${prefix}:spill:${k}`)) ?? undefined,
  delete: async (k) => void (await r.del(`${prefix}:spill:${k}`)),
});

let nextId = (1n << 60n) + BigInt(Date.now()) * 1000n + 777n;
function newJob(o: { uniqKey?: string; direct?: boolean; args?: Uint8Array } = {}): Job {
  const now = BigInt(Date.now());
  return create(JobSchema, {
    id: { value: nextId++ },
    data: {
      workerId: worker.id,
      args: o.args ?? new Uint8Array([1, 2, 3]),
      uniqKey: o.uniqKey,
      enqueueTime: now,
      runAfterTime: now,
      priority: Priority.MEDIUM,
      timeout: 60_000n,
      overrides: o.direct ? { responseType: ResponseType.DIRECT } : undefined,
    },
  });
}

/** What the front does for a queued job: PENDING state (and its uniq_key), then the message. */
async function enqueue(job: Job, durable = false): Promise<void> {
  if (job.data!.uniqKey) expect(await state.reserveUniqKey(worker.id!.value, job.data!.uniqKey, job.id!.value)).toBe(true);
  await state.setPending(statusEntry(job, worker, BigInt(Date.now())));
  if (durable) await store.insertJob(job);
  await queue.push({ job, channel: "crashy", durable });
}

const url = async (dlq: boolean) => (await aws.sqs.send(new GetQueueUrlCommand({ QueueName: sqsQueueName(prefix, "crashy", Priority.MEDIUM, dlq) }))).QueueUrl!;

/** A worker that dies after each receive, until SQS has moved `n` messages to the DLQ; returns them from the DLQ. */
async function crashUntilDeadLettered(n: number): Promise<Message[]> {
  const main = await url(false);
  const dlq = await url(true);
  const deadline = Date.now() + 30_000;
  const letters: Message[] = [];
  while (letters.length < n) {
    if (Date.now() > deadline) throw new Error(`only ${letters.length} of ${n} messages reached the DLQ`);
    await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: main, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 0 }));
    const out = await aws.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlq, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 300, MessageAttributeNames: ["All"], MessageSystemAttributeNames: ["All"] }),
    );
    letters.push(...(out.Messages ?? []));
  }
  return letters;
}

let dlqArn = "";
/** The Lambda event SQS sends for these DLQ messages (the event source mapping's record shape). */
function sqsEvent(messages: Message[]): SQSEvent {
  const records: SQSRecord[] = messages.map((m) => ({
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body!,
    attributes: {
      ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? "1",
      SentTimestamp: m.Attributes?.SentTimestamp ?? "0",
      SenderId: m.Attributes?.SenderId ?? "",
      ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? "0",
    },
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, { dataType: v.DataType!, stringValue: v.StringValue, stringListValues: [], binaryListValues: [] }]),
    ),
    md5OfBody: m.MD5OfBody!,
    eventSource: "aws:sqs",
    eventSourceARN: dlqArn,
    awsRegion: "us-east-1",
  }));
  return { Records: records };
}

async function invoke(d: RecorderDeps | (() => Promise<RecorderDeps>), messages: Message[]): Promise<string[]> {
  const res = (await dlqRecorderHandler(typeof d === "function" ? d : async () => d)(sqsEvent(messages), {} as Context)) as SQSBatchResponse;
  return res.batchItemFailures.map((f) => f.itemIdentifier);
}

async function recorderDeps(spill: SpillStore, mysqlUrl = db.url) {
  const c = mysqlUrl === db.url ? cfg : { ...cfg, mysqlUrl };
  const d = await buildRecorderDeps(c, { aws: localAws(), spill, log: silent });
  deps.push(d);
  return d;
}

beforeAll(async () => {
  db = await createTestDatabase(inject("mysqlUrl"), "dlq");
  store = await openMysqlStore(db.url);
  await store.migrate(new RunnerRegistry([commandRunner]).builtinRows(Date.now()));
  cfg = functionConfig({ mysqlUrl: db.url, redisUrl: inject("redisUrl"), prefix, channels: [{ name: "crashy", maxReceiveCount: MAX_RECEIVES }] });
  await provisionChannels(aws, prefix, cfg.channels);
  dlqArn = (await aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl: await url(true), AttributeNames: ["QueueArn"] }))).Attributes!.QueueArn!;
  state = new DynamoJobState({ dynamo: aws.dynamo, resourcePrefix: prefix });
  redis = new Redis(inject("redisUrl"));
  bus = new RedisResultBus(redis, { prefix });
  // jobs above 600 bytes are spilled (the real limit is 256 KiB)
  queue = new SqsJobQueue({ sqs: aws.sqs, dynamo: aws.dynamo, resourcePrefix: prefix, maxMessageBytes: 600, spill: redisSpill(redis) });
  // store_failure off: a dead letter is stored all the same
  const data = create(WorkerDataSchema, { name: "crashy", runnerId: { value: 1n }, channel: "crashy", storeFailure: false, queueType: QueueType.NORMAL });
  worker = (await store.findWorker(await store.createWorker(data, Date.now())))!;
}, 60_000);

afterAll(async () => {
  for (const d of deps) await d.close();
  await queue?.close();
  await bus?.close();
  redis?.disconnect();
  await store?.close();
  await db?.drop();
  aws.destroy();
});

describe("dlq-recorder Lambda", () => {
  it("records every dead letter as a stored MAX_RETRY result, clears its state, releases its waiter; reports only the record that failed", async () => {
    const direct = newJob({ direct: true });
    const unique = newJob({ uniqKey: "only-one" });
    const durable = newJob();
    const big = newJob({ args: new Uint8Array(2000).fill(7) }); // travels by reference (spilled)
    for (const j of [direct, unique]) await enqueue(j);
    await enqueue(durable, true);
    await enqueue(big);
    const waiter = bus.waitResult(direct.id!.value, 60_000);

    const letters = await crashUntilDeadLettered(4);
    // a message that is no job of ours lands in the DLQ too
    await aws.sqs.send(new SendMessageCommand({ QueueUrl: await url(true), MessageBody: "hello, not a job" }));
    const foreign = (await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: await url(true), WaitTimeSeconds: 1, VisibilityTimeout: 300 }))).Messages!;
    expect(foreign).toHaveLength(1);

    // the spill store is down for this invocation: only the spilled job's record fails, and is reported
    const down = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on("error", () => undefined);
    const failed = await invoke(await recorderDeps(redisSpill(down)), [...letters, ...foreign]);
    const bigLetter = letters.find((m) => m.Body!.includes(String(big.id!.value)))!;
    expect(failed).toEqual([bigLetter.MessageId]);

    for (const j of [direct, unique, durable]) {
      const id = j.id!.value;
      const results = await store.findResultsByJobId(id);
      expect(results).toHaveLength(1);
      const r = results[0].data!;
      expect(r.status).toBe(ResultStatus.MAX_RETRY);
      expect(new TextDecoder().decode(r.output!.items)).toMatch(`reached the dead-letter queue after ${MAX_RECEIVES} deliveries`);
      expect(await state.find(id)).toBeUndefined();
    }
    expect(await store.findResultsByJobId(big.id!.value)).toEqual([]);
    expect(await state.find(big.id!.value)).toBeDefined();
    // the DIRECT caller is released with the failure
    expect((await waiter)?.data?.status).toBe(ResultStatus.MAX_RETRY);
    // the uniq_key is free again, the durable row is gone
    expect(await state.reserveUniqKey(worker.id!.value, "only-one", nextId++)).toBe(true);
    expect(await store.findJob(durable.id!.value)).toBeUndefined();

    // delivered again (the spill store is back): recorded, and its spilled bytes deleted
    const healthy = await recorderDeps(redisSpill(redis));
    expect(await invoke(healthy, [bigLetter])).toEqual([]);
    expect((await store.findResultsByJobId(big.id!.value))[0].data!.status).toBe(ResultStatus.MAX_RETRY);
    expect(await state.find(big.id!.value)).toBeUndefined();
    expect(await redis.keys(`${prefix}:spill:*`)).toEqual([]);

    // a dead letter delivered twice stores no second result
    expect(await invoke(healthy, letters.filter((m) => m !== bigLetter))).toEqual([]);
    expect(await store.findResultsByJobId(direct.id!.value)).toHaveLength(1);
  });

  it("reports every record when the database is down, so the batch is delivered again", async () => {
    const job = newJob();
    await enqueue(job);
    const letters = await crashUntilDeadLettered(1);
    // nothing listens on port 1: connecting fails at once (whether opening the store or the first query notices)
    const unreachable = new URL(db.url);
    unreachable.port = "1";
    const failed = await invoke(() => recorderDeps(redisSpill(redis), unreachable.toString()), letters);
    expect(failed).toEqual(letters.map((m) => m.MessageId));
    expect(await state.find(job.id!.value)).toBeDefined(); // untouched: it is retried whole

    expect(await invoke(await recorderDeps(redisSpill(redis)), letters)).toEqual([]);
    expect((await store.findResultsByJobId(job.id!.value))[0].data!.status).toBe(ResultStatus.MAX_RETRY);
  });
});
