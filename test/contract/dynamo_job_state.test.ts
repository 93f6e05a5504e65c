// The JobState contract against DynamoDB (moto server), plus what only DynamoDB has: a stale fencing token's late
// finish refused across instances, a missing table, the size cap of stored jobs.
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoJobState } from "../../worker-container/src/adapters/aws/dynamo_job_state.js";
import { ensureJobStateTable } from "../../worker-container/src/adapters/aws/provision.js";
import { AppError } from "../../worker-container/src/core/errors.js";
import type { JobStatusEntry } from "../../worker-container/src/core/ports.js";
import { JobProcessingStatus, Priority } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";
import { newResourcePrefix, testAwsClients } from "../helpers/aws.js";
import { describeJobStateContract } from "./job_state.contract.js";

const clients = testAwsClients();
const prefix = newResourcePrefix("st");
beforeAll(async () => {
  await ensureJobStateTable(clients.dynamo, prefix);
}, 60_000);
afterAll(() => clients.destroy());

const open = () => new DynamoJobState({ dynamo: clients.dynamo, resourcePrefix: prefix });

describeJobStateContract("dynamodb", async () => open());

let nextId = (1n << 61n) + BigInt(Date.now()) * 4096n;
function entry(args = new Uint8Array([1, 2, 3])): JobStatusEntry {
  const jobId = nextId++;
  const now = BigInt(Date.now());
  return {
    jobId,
    status: JobProcessingStatus.PENDING,
    workerId: 42n,
    channel: "c",
    priority: Priority.MEDIUM,
    enqueueTime: now,
    isStreamable: false,
    broadcastResults: false,
    updatedAt: now,
    job: create(JobSchema, { id: { value: jobId }, data: { workerId: { value: 42n }, args, timeout: 1000n } }),
  };
}

describe("DynamoJobState specifics", () => {
  it("a paused worker's late finish is refused after the job was claimed again elsewhere (fencing token)", async () => {
    const a = open(); // the worker whose lease ran out while it was paused
    const b = open(); // the worker that got the job delivered again
    const e = entry();
    await a.setPending(e);
    const stale = await a.claim(e, BigInt(Date.now()));
    const fresh = await b.claim(e, BigInt(Date.now()));
    expect(fresh!.token).toBeGreaterThan(stale!.token);
    expect(await a.markWaitResult(e.jobId, stale!)).toBe(false);
    expect(await a.finish(e.jobId, stale!)).toBe(false);
    expect((await b.find(e.jobId))!.status).toBe(JobProcessingStatus.RUNNING);
    expect(await b.finish(e.jobId, fresh!)).toBe(true);
  });

  it("a job's next entry (periodic occurrence) never reuses a token of the finished one", async () => {
    const s = open();
    const e = entry();
    const first = await s.claim(e, BigInt(Date.now()));
    expect(await s.finish(e.jobId, first!)).toBe(true);
    const second = await s.claim(e, BigInt(Date.now()));
    expect(second!.token).not.toBe(first!.token);
    expect(await s.finish(e.jobId, first!)).toBe(false);
    expect(await s.finish(e.jobId, second!)).toBe(true);
  });

  it("a job bigger than maxStoredJobBytes is kept without its args", async () => {
    const s = new DynamoJobState({ dynamo: clients.dynamo, resourcePrefix: prefix, maxStoredJobBytes: 1024 });
    const e = entry(new Uint8Array(4096).fill(7));
    await s.setPending(e);
    const got = await s.find(e.jobId);
    expect(got!.job.id!.value).toBe(e.jobId);
    expect(got!.job.data!.args).toHaveLength(0);
    expect(got!.job.data!.timeout).toBe(1000n);
    await s.remove(e.jobId);
  });

  it("uniqKeyHolder answers the reservation's job", async () => {
    const s = open();
    const key = `k-${nextId}`;
    expect(await s.uniqKeyHolder(7n, key)).toBeUndefined();
    expect(await s.reserveUniqKey(7n, key, 99n)).toBe(true);
    expect(await s.uniqKeyHolder(7n, key)).toBe(99n);
    await s.releaseUniqKey(7n, key, 99n);
    expect(await s.uniqKeyHolder(7n, key)).toBeUndefined();
  });

  it("a missing table is a clear FAILED_PRECONDITION naming the table and bootstrap", async () => {
    const s = new DynamoJobState({ dynamo: clients.dynamo, resourcePrefix: newResourcePrefix("none") });
    const err = await s.find(1n).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).kind).toBe("FAILED_PRECONDITION");
    expect((err as Error).message).toMatch(/DynamoDB table '.*-job-state' does not exist.*jobworkerp aws bootstrap/);
    await expect(s.setPending(entry())).rejects.toThrow(/does not exist/);
  });
});
