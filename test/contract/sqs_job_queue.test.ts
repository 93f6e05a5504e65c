// The JobQueue contract against SQS (moto server), plus what only SQS has: redrive to the DLQ, heartbeats, jobs
// by reference, malformed messages, missing queues, long delays, a killed worker's lease, API calls per job.
import { create } from "@bufbuild/protobuf";
import { GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoJobState } from "../../worker-container/src/adapters/aws/dynamo_job_state.js";
import { ensureJobStateTable, ensureQueueWithDlq } from "../../worker-container/src/adapters/aws/provision.js";
import { SqsJobQueue, type SpillStore, type SqsJobQueueOptions } from "../../worker-container/src/adapters/aws/sqs_job_queue.js";
import { encodeBody, jobBytes } from "../../worker-container/src/adapters/aws/sqs_message.js";
import { sqsQueueName } from "../../worker-container/src/core/channel_config.js";
import { AppError } from "../../worker-container/src/core/errors.js";
import type { JobQueue, Lease, QueuedJob } from "../../worker-container/src/core/ports.js";
import { JobProcessingStatus, Priority } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";
import { countCalls, newResourcePrefix, testAwsClients } from "../helpers/aws.js";
import { describeJobQueueContract } from "./job_queue.contract.js";

const clients = testAwsClients();
const prefix = newResourcePrefix("q");
beforeAll(async () => {
  await ensureJobStateTable(clients.dynamo, prefix);
}, 60_000);
afterAll(() => clients.destroy());

const errors: string[] = [];
const open = (opts: Partial<SqsJobQueueOptions> = {}): SqsJobQueue =>
  new SqsJobQueue({
    sqs: clients.sqs,
    dynamo: clients.dynamo,
    resourcePrefix: prefix,
    createMissingQueues: { maxReceiveCount: 5 },
    onError: (e, context) => errors.push(`${context}: ${(e as Error).message}`),
    ...opts,
  });

// SQS visibility has whole-second granularity: leases of 1 s; no view for `list` (see JobQueueCaps.peeks); every
// step is an HTTP call to moto (tens of ms on a loaded machine), so the overtaking case gets a 500 ms delay
describeJobQueueContract("sqs", async ({ leaseMs }) => open({ leaseMs, waitSeconds: 5 }), { leaseMs: 1000, peeks: false, delayMs: 500 });

let nextId = (1n << 61n) + BigInt(Date.now()) * 4096n;
let chSeq = 0;
const newChannel = (tag: string) => `${tag}-${chSeq++}`;
const item = (channel: string, priority = Priority.MEDIUM, args = new Uint8Array([7])): QueuedJob => ({
  job: create(JobSchema, { id: { value: nextId++ }, data: { priority, args, workerId: { value: 5n }, timeout: 60_000n } }),
  channel,
});
const idOf = (x: { item: QueuedJob } | undefined) => x?.item.job.id!.value;
const within = (ms: number) => AbortSignal.timeout(ms);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const queueUrl = async (channel: string, priority = Priority.MEDIUM, dlq = false) =>
  (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: sqsQueueName(prefix, channel, priority, dlq) }))).QueueUrl!;

async function withQueues<T>(qs: JobQueue[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await Promise.all(qs.map((q) => q.close()));
  }
}

describe("SqsJobQueue specifics", () => {
  it("a killed worker's job is delivered again after its lease; its late ack and finish are refused", async () => {
    const ch = newChannel("killed");
    const a = open({ leaseMs: 1000 }); // the worker that is killed (paused) mid-job
    const b = open({ leaseMs: 1000 }); // a live worker
    const state = new DynamoJobState({ dynamo: clients.dynamo, resourcePrefix: prefix });
    await withQueues([a, b], async () => {
      const x = item(ch);
      const entry = { jobId: x.job.id!.value, status: JobProcessingStatus.PENDING, workerId: 5n, channel: ch, priority: Priority.MEDIUM, enqueueTime: 1n, isStreamable: false, broadcastResults: false, updatedAt: 1n, job: x.job };
      await state.setPending(entry);
      await a.push(x);
      const first = await a.lease(ch, within(5000));
      expect(idOf(first)).toBe(x.job.id!.value);
      const staleClaim = await state.claim(entry, BigInt(Date.now()));
      // a stops heartbeating; b gets the job once the visibility runs out
      const second = await b.lease(ch, within(10_000));
      expect(idOf(second)).toBe(x.job.id!.value);
      const claim = await state.claim(entry, BigInt(Date.now()));
      // the paused worker wakes up: its writes are refused, the live one completes the job
      expect(await state.finish(x.job.id!.value, staleClaim!)).toBe(false);
      expect(await a.ack(first!)).toBe(false);
      expect(await state.finish(x.job.id!.value, claim!)).toBe(true);
      expect(await b.ack(second!)).toBe(true);
      expect(await b.lease(ch, within(2500))).toBeUndefined();
    });
  });

  it("a job delivered maxReceiveCount times goes to the DLQ (redrive)", async () => {
    const ch = newChannel("redrive");
    const q = open({ leaseMs: 1000, createMissingQueues: { maxReceiveCount: 2 } });
    await withQueues([q], async () => {
      const x = item(ch);
      await q.push(x);
      expect(idOf(await q.lease(ch, within(5000)))).toBe(x.job.id!.value); // receive 1, lease lapses
      expect(idOf(await q.lease(ch, within(10_000)))).toBe(x.job.id!.value); // receive 2, lapses
      expect(await q.lease(ch, within(3500))).toBeUndefined(); // the next receive redrives it instead
      const dlq = await queueUrl(ch, Priority.MEDIUM, true);
      const out = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq, WaitTimeSeconds: 1 }));
      expect(out.Messages).toHaveLength(1);
      expect(JSON.parse(out.Messages![0].Body!).id).toBe(x.job.id!.value.toString());
    });
  });

  it("heartbeats (extend) keep a long job leased well past its lease length", async () => {
    const ch = newChannel("heartbeat");
    const a = open({ leaseMs: 1000 });
    const b = open({ leaseMs: 1000 });
    await withQueues([a, b], async () => {
      await a.push(item(ch));
      const l = await a.lease(ch, within(5000));
      expect(l).toBeDefined();
      let stop = false;
      const beats = (async () => {
        while (!stop) {
          expect(await a.extend(l!, 1000)).toBe(true);
          await sleep(300);
        }
      })();
      expect(await b.lease(ch, within(3500)), "not delivered elsewhere while heartbeating").toBeUndefined();
      stop = true;
      await beats;
      expect(await a.ack(l!)).toBe(true);
    });
  });

  it("a job bigger than a message travels by reference; the spilled bytes go with the ack", async () => {
    const ch = newChannel("spill");
    const spilled = new Map<string, Uint8Array>();
    const spill: SpillStore = {
      put: async (k, b) => void spilled.set(k, b),
      get: async (k) => spilled.get(k),
      delete: async (k) => void spilled.delete(k),
    };
    const q = open({ maxMessageBytes: 4096, spill });
    const noSpill = open({ maxMessageBytes: 4096 });
    await withQueues([q, noSpill], async () => {
      const big = item(ch, Priority.MEDIUM, new Uint8Array(20_000).map((_, i) => i % 251));
      await q.push(big);
      expect(spilled.size).toBe(1);
      const l = await q.lease(ch, within(5000));
      expect(idOf(l)).toBe(big.job.id!.value);
      expect(l!.item.job.data!.args).toEqual(big.job.data!.args);
      expect(await q.ack(l!)).toBe(true);
      expect(spilled.size).toBe(0);
      const err = await noSpill.push(item(ch, Priority.MEDIUM, new Uint8Array(20_000))).catch((e: unknown) => e);
      expect((err as AppError).kind).toBe("INVALID_ARGUMENT");
      expect((err as Error).message).toMatch(/too big for one SQS message/);
    });
  });

  it("a malformed message goes to the DLQ with its reason; polling goes on", async () => {
    const ch = newChannel("garbage");
    const q = open();
    await withQueues([q], async () => {
      const good = item(ch);
      await q.push(good); // creates the queues
      const url = await queueUrl(ch);
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "this is not a job" }));
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify({ v: 1, id: "12", c: ch, j: Buffer.from([0xff, 0xff, 0xff]).toString("base64") }) }));
      const after = item(ch);
      await q.push(after);
      const seen: bigint[] = [];
      for (let i = 0; i < 2; i++) {
        const l = await q.lease(ch, within(5000));
        seen.push(idOf(l)!);
        await q.ack(l!);
      }
      expect(seen).toEqual([good.job.id!.value, after.job.id!.value]);
      const dlq = await queueUrl(ch, Priority.MEDIUM, true);
      const bodies: string[] = [];
      const reasons: string[] = [];
      for (let i = 0; i < 5 && bodies.length < 2; i++) {
        const out = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq, WaitTimeSeconds: 1, MaxNumberOfMessages: 10, MessageAttributeNames: ["All"] }));
        for (const m of out.Messages ?? []) {
          bodies.push(m.Body!);
          reasons.push(m.MessageAttributes?.jobworkerp_error?.StringValue ?? "");
        }
      }
      expect(bodies).toContain("this is not a job");
      expect(reasons.some((r) => /not JSON/.test(r))).toBe(true);
      expect(reasons.some((r) => /do not decode/.test(r))).toBe(true);
      expect(errors.some((e) => /malformed message/.test(e))).toBe(true);
    });
  });

  it("a missing queue: push fails with a clear error; a lease keeps polling and gets the job once the queue exists", async () => {
    const ch = newChannel("missing");
    const q = open({ createMissingQueues: undefined });
    await withQueues([q], async () => {
      const name = sqsQueueName(prefix, ch, Priority.MEDIUM);
      const err = await q.push(item(ch)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).kind).toBe("FAILED_PRECONDITION");
      expect((err as Error).message).toContain(`SQS queue '${sqsQueueName(prefix, ch, Priority.HIGH)}' does not exist`.replace(sqsQueueName(prefix, ch, Priority.HIGH), name));
      expect((err as Error).message).toContain("jobworkerp aws bootstrap");
      const before = errors.length;
      const waiting = q.lease(ch, within(20_000));
      await sleep(300);
      expect(errors.slice(before).some((e) => /does not exist/.test(e))).toBe(true);
      for (const p of [Priority.HIGH, Priority.MEDIUM, Priority.LOW]) {
        await ensureQueueWithDlq(clients.sqs, { name: sqsQueueName(prefix, ch, p), dlqName: sqsQueueName(prefix, ch, p, true), maxReceiveCount: 3 });
      }
      const x = item(ch);
      await q.push(x);
      expect(idOf(await waiting)).toBe(x.job.id!.value);
    });
  });

  it("a missing job-state table (removal markers): a clear error, the job is kept and delivered once the table exists", async () => {
    const ch = newChannel("notable");
    const noTable = newResourcePrefix("nt");
    const q = open({ resourcePrefix: noTable, leaseMs: 1000 });
    await withQueues([q], async () => {
      const x = item(ch);
      await q.push(x);
      const before = errors.length;
      const waiting = q.lease(ch, within(25_000));
      for (let i = 0; i < 100 && !errors.slice(before).some((e) => /DynamoDB table '.*' does not exist/.test(e)); i++) await sleep(100);
      expect(errors.slice(before).join("\n")).toMatch(new RegExp(`DynamoDB table '${noTable}-job-state' does not exist.*jobworkerp aws bootstrap`));
      expect((await q.remove(x.job.id!.value).catch((e: unknown) => e)) as AppError).toBeInstanceOf(AppError);
      await ensureJobStateTable(clients.dynamo, noTable);
      expect(idOf(await waiting)).toBe(x.job.id!.value);
    });
  });

  it("a HIGH job pushed during a MEDIUM backlog is the next one leased", async () => {
    const ch = newChannel("overtake");
    const q = open({ leaseMs: 30_000 });
    await withQueues([q], async () => {
      const backlog = Array.from({ length: 20 }, () => item(ch));
      await Promise.all(backlog.map((x) => q.push(x)));
      // a standard queue's order is best-effort (two batches sent at once may interleave): any backlog job will do
      const isBacklog = (l: Lease | undefined) => backlog.some((x) => x.job.id!.value === idOf(l));
      for (let i = 0; i < 3; i++) expect(isBacklog(await q.lease(ch, within(5000)))).toBe(true);
      const high = item(ch, Priority.HIGH);
      await q.push(high);
      // HIGH's watching long poll returns it (moto re-checks a waiting poll at least once a second; generous on a
      // loaded machine), or the next round's short poll finds it
      await sleep(2500);
      expect(idOf(await q.lease(ch, within(5000)))).toBe(high.job.id!.value);
      expect(isBacklog(await q.lease(ch, within(5000)))).toBe(true);
    });
  });

  it("a job due in 1.5 s runs at its time, not before; a delay past SQS's 15 minutes goes to longDelay", async () => {
    const ch = newChannel("due");
    const long: [bigint, number][] = [];
    const q = open({ longDelay: async (x, ms) => void long.push([x.job.id!.value, ms]) });
    await withQueues([q], async () => {
      await q.push(item(ch)); // creates the channel's queues
      await q.ack((await q.lease(ch, within(5000)))!);
      const x = item(ch);
      const t0 = Date.now();
      await q.push(x, 1500);
      const l = await q.lease(ch, within(10_000));
      const late = Date.now() - t0 - 1500;
      expect(idOf(l)).toBe(x.job.id!.value);
      expect(late).toBeGreaterThanOrEqual(-5);
      console.log(`sqs: a job due in 1500 ms was handed out ${late} ms after its time`);
      await q.ack(l!);
      const y = item(ch);
      await q.push(y, 3_600_000);
      expect(long).toEqual([[y.job.id!.value, 3_600_000]]);
    });
  });

  it("a message due more than a second after its delivery is sent on (a long delay hopping through the queue)", async () => {
    const ch = newChannel("hop");
    const q = open();
    await withQueues([q], async () => {
      const x = item(ch);
      await q.push(item(ch)).then(async () => {
        const l = await q.lease(ch, within(5000)); // creates the queues; clear them
        await q.ack(l!);
      });
      const due = Date.now() + 3000;
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: await queueUrl(ch), MessageBody: encodeBody(x, due, jobBytes(x)) }));
      const l = await q.lease(ch, within(10_000));
      expect(idOf(l)).toBe(x.job.id!.value);
      expect(Date.now()).toBeGreaterThanOrEqual(due - 5);
      await q.ack(l!);
    });
  });

  it("API calls per NO_RESULT job (setPending, push, lease, claim, finish, ack) with 8 loops", async () => {
    const ch = newChannel("calls");
    const q = open({ leaseMs: 30_000 });
    const state = new DynamoJobState({ dynamo: clients.dynamo, resourcePrefix: prefix });
    // warm up: create the queues and resolve their URLs before counting
    await q.push(item(ch));
    await q.ack((await q.lease(ch, within(5000)))!);
    const sqsCalls = countCalls(clients.sqs as never);
    const dynamoCalls = countCalls(clients.dynamo as never);
    const total = () => [...sqsCalls.values(), ...dynamoCalls.values()].reduce((a, b) => a + b, 0);
    const entry = (x: QueuedJob, status: JobProcessingStatus) => ({
      jobId: x.job.id!.value, status, workerId: 5n, channel: ch, priority: Priority.MEDIUM, enqueueTime: 1n, isStreamable: false, broadcastResults: false, updatedAt: 1n, job: x.job,
    });
    const enqueue = async (x: QueuedJob) => {
      await state.setPending(entry(x, JobProcessingStatus.PENDING));
      await q.push(x);
    };
    let done = 0;
    let finished = () => {};
    const ac = new AbortController();
    const loop = async () => {
      while (!ac.signal.aborted) {
        const l = await q.lease(ch, ac.signal);
        if (!l) return;
        const c = await state.claim(entry(l.item, JobProcessingStatus.RUNNING), BigInt(Date.now()));
        await state.finish(l.item.job.id!.value, c!);
        void q.ack(l);
        done++;
        finished();
      }
    };
    await withQueues([q], async () => {
      const loops = Array.from({ length: 8 }, loop);
      // a backlog enqueued in bursts of 20 concurrent requests, as fronts would
      const N = 200;
      const jobs = Array.from({ length: N }, () => item(ch));
      const allDone = new Promise<void>((r) => (finished = () => done >= N && r()));
      for (let i = 0; i < N; i += 20) await Promise.all(jobs.slice(i, i + 20).map(enqueue));
      await allDone;
      await sleep(100); // the last acks
      const burst = total() / N;
      console.log(`sqs: ${N} jobs in bursts: SQS ${JSON.stringify(Object.fromEntries(sqsCalls))}, DynamoDB ${JSON.stringify(Object.fromEntries(dynamoCalls))}: ${burst.toFixed(2)} calls per job`);
      expect(burst).toBeLessThanOrEqual(6);

      // one job at a time (the next enqueued once the last one finished): every batch holds one job
      const before = total();
      const M = 10;
      for (let i = 0; i < M; i++) {
        const one = new Promise<void>((r) => (finished = r));
        await enqueue(item(ch));
        await one;
        await sleep(40); // its ack
      }
      console.log(`sqs: ${M} jobs one at a time: ${((total() - before) / M).toFixed(2)} calls per job`);
      ac.abort();
      await Promise.all(loops);
    });
  });
});
