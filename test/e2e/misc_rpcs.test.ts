// Less used RPCs: EnqueueWithClientStream refusals, JobResultService deletes, JobProcessingStatusService
// conditions, NOT_FOUND / UNIMPLEMENTED / FAILED_PRECONDITION answers, and request metadata in results.
import { describe, expect, it } from "vitest";
import {
  COMMAND_RUNNER_ID,
  type ResultOutputItem,
  Status,
  collect,
  collectSettled,
  commandOutput,
  expectRpcError,
  grpc,
  shArgs,
} from "../helpers/client.js";
import { createCommandWorker, expectCode, sleep, useServer } from "../helpers/fixture.js";

const TOKEN = "misc-secret";
const UNSERVED = "misc_nobody_serves_this";
// AUTH_TOKEN set: every call carries jobworkerp-auth, which must never end up in job metadata
const fx = useServer({ env: { AUTH_TOKEN: TOKEN, JOB_STATUS_RDB_INDEXING: "true" }, token: TOKEN });

/** Opens EnqueueWithClientStream, writes `messages`, half-closes, and reads the outcome. */
async function clientStream(messages: Record<string, unknown>[]) {
  const call = fx.api.job.EnqueueWithClientStream({ timeoutMs: 3000 });
  for (const m of messages) call.write(m);
  call.end();
  return collectSettled<ResultOutputItem>(call, 5000);
}

describe("EnqueueWithClientStream", () => {
  it("a first job_request for a COMMAND worker -> INVALID_ARGUMENT (no built-in method takes a client stream); no job is created", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "NO_RESULT", store_success: true, store_failure: true });
    const jobsBefore = Number((await fx.api.job.Count({})).response.total);
    const out = await clientStream([
      { job_request: { worker_id: { value: workerId }, args: shArgs("echo never") } },
      { feed_data: { data: Buffer.from("chunk"), is_final: true } },
    ]);
    expect(out.items).toEqual([]);
    expect(out.error, "the call must fail").not.toBeNull();
    expectCode(out.error!, Status.INVALID_ARGUMENT);
    await sleep(200);
    expect(Number((await fx.api.job.Count({})).response.total)).toBe(jobsBefore);
    expect(Number((await fx.api.jobResult.CountBy({ worker_ids: [{ value: workerId }] })).response.total), "nothing ran").toBe(0);
  });

  it("a first message feed_data -> INVALID_ARGUMENT", async () => {
    const out = await clientStream([{ feed_data: { data: Buffer.from("too early"), is_final: true } }]);
    expect(out.items).toEqual([]);
    expect(out.error, "the call must fail").not.toBeNull();
    expectCode(out.error!, Status.INVALID_ARGUMENT);
  });
});

describe("JobResultService deletes", () => {
  it("DeleteBulk without any condition -> INVALID_ARGUMENT and deletes nothing", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "DIRECT", store_success: true });
    await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("echo keep") }, { timeoutMs: 10_000 });
    const before = Number((await fx.api.jobResult.CountBy({})).response.total);
    expect(before).toBeGreaterThanOrEqual(1);
    expectCode(await expectRpcError(fx.api.jobResult.DeleteBulk({})), Status.INVALID_ARGUMENT);
    expect(Number((await fx.api.jobResult.CountBy({})).response.total)).toBe(before);
  });

  it("DeleteBulk with worker_ids deletes that worker's stored results only", async () => {
    const a = await createCommandWorker(fx.api, { response_type: "DIRECT", store_success: true });
    const b = await createCommandWorker(fx.api, { response_type: "DIRECT", store_success: true });
    for (const n of [1, 2, 3]) await fx.api.job.Enqueue({ worker_id: { value: a }, args: shArgs(`echo a${n}`) }, { timeoutMs: 10_000 });
    await fx.api.job.Enqueue({ worker_id: { value: b }, args: shArgs("echo b1") }, { timeoutMs: 10_000 });
    const countOf = async (w: string) => Number((await fx.api.jobResult.CountBy({ worker_ids: [{ value: w }] })).response.total);
    expect(await countOf(a)).toBe(3);
    expect(await countOf(b)).toBe(1);
    const total = Number((await fx.api.jobResult.CountBy({})).response.total);

    const { response } = await fx.api.jobResult.DeleteBulk({ worker_ids: [{ value: a }] });
    expect(Number(response.deleted_count)).toBe(3);
    expect(await countOf(a)).toBe(0);
    expect(await countOf(b), "the other worker's results stay").toBe(1);
    expect(Number((await fx.api.jobResult.CountBy({})).response.total)).toBe(total - 3);
    expect(await collect(fx.api.jobResult.FindListBy({ worker_ids: [{ value: a }] }))).toEqual([]);
    // nothing left to delete
    expect(Number((await fx.api.jobResult.DeleteBulk({ worker_ids: [{ value: a }] })).response.deleted_count)).toBe(0);
  });

  it("Delete of a result id removes it (Find then has no data); Delete again / of an unknown id -> NOT_FOUND", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "DIRECT", store_success: true });
    for (const n of [1, 2]) await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`echo r${n}`) }, { timeoutMs: 10_000 });
    const stored = await collect(fx.api.jobResult.FindListBy({ worker_ids: [{ value: workerId }] }));
    expect(stored.length).toBe(2);
    const [victim, survivor] = stored;
    expect((await fx.api.jobResult.Find(victim.id)).response.data?.id.value).toBe(victim.id.value);

    expect((await fx.api.jobResult.Delete(victim.id)).response.is_success).toBe(true);
    expect((await fx.api.jobResult.Find(victim.id)).response.data, "deleted result is absent").toBeUndefined();
    expect((await fx.api.jobResult.Find(survivor.id)).response.data?.id.value, "the other result stays").toBe(survivor.id.value);
    expect((await collect(fx.api.jobResult.FindListByJobId({ job_id: victim.data.job_id }))).length).toBe(0);

    expectCode(await expectRpcError(fx.api.jobResult.Delete(victim.id)), Status.NOT_FOUND);
    expectCode(await expectRpcError(fx.api.jobResult.Delete({ value: "123456789" })), Status.NOT_FOUND);
  });
});

describe("JobProcessingStatusService conditions", () => {
  it("CountByCondition (GROUP_BY_STATUS) counts PENDING jobs on an unserved channel; FindByCondition lists them", async () => {
    const workerId = await createCommandWorker(fx.api, { channel: UNSERVED });
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      ids.push((await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`echo ${n}`), timeout: 5000 })).response.id.value);
    }
    try {
      const grouped = (
        await fx.api.jobStatus.CountByCondition({ channel: UNSERVED, mode: "COUNT_JOB_PROCESSING_STATUS_MODE_GROUP_BY_STATUS" })
      ).response as { total: string; mode: string; counts: { status: string; count: string }[] };
      expect(grouped.mode).toBe("COUNT_JOB_PROCESSING_STATUS_MODE_GROUP_BY_STATUS");
      expect(Number(grouped.total)).toBe(3);
      expect(grouped.counts.map((c) => [c.status, Number(c.count)])).toEqual([["PENDING", 3]]);

      const byWorker = (await fx.api.jobStatus.CountByCondition({ worker_id: workerId, status: "PENDING" })).response as { total: string };
      expect(Number(byWorker.total)).toBe(3);
      const running = (await fx.api.jobStatus.CountByCondition({ channel: UNSERVED, status: "RUNNING" })).response as { total: string };
      expect(Number(running.total)).toBe(0);
      const otherChannel = (await fx.api.jobStatus.CountByCondition({ channel: "misc_no_such_channel" })).response as { total: string };
      expect(Number(otherChannel.total)).toBe(0);

      const rows = (await collect(fx.api.jobStatus.FindByCondition({ channel: UNSERVED }))) as {
        id: { value: string };
        status: string;
        worker_id: string;
        channel: string;
        enqueue_time: string;
      }[];
      expect(rows.map((r) => r.id.value).sort()).toEqual([...ids].sort());
      for (const r of rows) {
        expect(r.status).toBe("PENDING");
        expect(r.worker_id).toBe(workerId);
        expect(r.channel).toBe(UNSERVED);
        expect(Number(r.enqueue_time)).toBeGreaterThan(0);
      }
      const limited = await collect(fx.api.jobStatus.FindByCondition({ channel: UNSERVED, limit: 2 }));
      expect(limited.length).toBe(2);
      expect(await collect(fx.api.jobStatus.FindByCondition({ channel: UNSERVED, status: "RUNNING" }))).toEqual([]);
    } finally {
      for (const id of ids) await fx.api.job.Delete({ value: id });
    }
    expect(Number((await fx.api.jobStatus.CountByCondition({ channel: UNSERVED })).response.total as string), "deleted jobs are not counted").toBe(0);
  });
});

describe("NOT_FOUND / UNIMPLEMENTED / FAILED_PRECONDITION", () => {
  it("RunnerService.RefreshMcpRunner: nothing to refresh; a built-in runner -> FAILED_PRECONDITION; unknown -> NOT_FOUND", async () => {
    const all = await fx.api.runner.RefreshMcpRunner({});
    expect(all.response.updated_runners).toEqual([]);
    expect(all.response.failures).toEqual([]);
    expectCode(await expectRpcError(fx.api.runner.RefreshMcpRunner({ runner_id: { value: COMMAND_RUNNER_ID } })), Status.FAILED_PRECONDITION);
    expectCode(await expectRpcError(fx.api.runner.RefreshMcpRunner({ runner_id: { value: "424242" } })), Status.NOT_FOUND);
  });

  it("JobService.Delete of an unknown job id -> NOT_FOUND", async () => {
    expectCode(await expectRpcError(fx.api.job.Delete({ value: "123456789012" })), Status.NOT_FOUND);
  });

  it("RunnerService.Create of PLUGIN with no module there -> FAILED_PRECONDITION, of MCP_SERVER without a transport -> INVALID_ARGUMENT; Delete of built-in runner 1 -> FAILED_PRECONDITION (it stays)", async () => {
    const before = Number((await fx.api.runner.CountBy({})).response.total);
    for (const [runner_type, code] of [["MCP_SERVER", Status.INVALID_ARGUMENT], ["PLUGIN", Status.FAILED_PRECONDITION]] as const) {
      const err = await expectRpcError(
        fx.api.runner.Create({ name: `misc-${runner_type.toLowerCase()}`, description: "e2e", runner_type, definition: "{}" }),
      );
      expectCode(err, code);
    }
    expect(Number((await fx.api.runner.CountBy({})).response.total), "no runner was registered").toBe(before);

    expectCode(await expectRpcError(fx.api.runner.Delete({ value: COMMAND_RUNNER_ID })), Status.FAILED_PRECONDITION);
    const still = (await fx.api.runner.Find({ value: COMMAND_RUNNER_ID })).response.data;
    expect(still?.data.name).toBe("COMMAND");
  });
});

describe("request metadata", () => {
  it("custom request headers (x-trace-id) are copied into Job.metadata and the stored JobResult's metadata; jobworkerp-auth is not", async () => {
    const md = new grpc.Metadata();
    md.set("x-trace-id", "abc");
    md.set("x-tenant", "t1");

    // DIRECT: the response's result and the stored one
    const workerId = await createCommandWorker(fx.api, { response_type: "DIRECT", store_success: true });
    const { response } = await fx.api.job.Enqueue(
      { worker_id: { value: workerId }, args: shArgs("echo traced") },
      { metadata: md, timeoutMs: 10_000 },
    );
    expect(commandOutput(response.result).stdout).toBe("traced\n");
    expect(response.result!.metadata["x-trace-id"]).toBe("abc");
    const [stored] = await collect(fx.api.jobResult.FindListBy({ worker_ids: [{ value: workerId }] }));
    expect(stored, "stored result").toBeDefined();
    expect(stored.data.job_id.value).toBe(response.id.value);
    expect(stored.metadata["x-trace-id"]).toBe("abc");
    expect(stored.metadata["x-tenant"]).toBe("t1");
    expect(stored.metadata, "auth token must not be stored").not.toHaveProperty("jobworkerp-auth");
    expect(Object.values(stored.metadata)).not.toContain(TOKEN);
    for (const k of Object.keys(stored.metadata)) expect(k.startsWith("jobworkerp-"), `metadata key ${k}`).toBe(false);

    // a pending job carries it too (JobService.Find)
    const pendingWorker = await createCommandWorker(fx.api, { channel: UNSERVED });
    const pending = (await fx.api.job.Enqueue({ worker_id: { value: pendingWorker }, args: shArgs("echo later") }, { metadata: md }))
      .response.id.value;
    try {
      const job = (await fx.api.job.Find({ value: pending })).response.data!;
      expect(job.metadata["x-trace-id"]).toBe("abc");
      expect(job.metadata).not.toHaveProperty("jobworkerp-auth");
      expect(Object.values(job.metadata)).not.toContain(TOKEN);
    } finally {
      await fx.api.job.Delete({ value: pending });
    }

    // without the header, nothing of it sticks to the next job
    const plain = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("echo plain") }, { timeoutMs: 10_000 });
    expect(plain.response.result!.metadata).not.toHaveProperty("x-trace-id");
  });
});
