// Invalid requests get the right gRPC status, and the server keeps serving after each.
import { afterEach, describe, expect, it } from "vitest";
import {
  COMMAND_RUNNER_ID,
  Status,
  StreamTap,
  collectSettled,
  encodeCommandArgs,
  expectRpcError,
  rawUnary,
  rawUnaryTyped,
  shArgs,
} from "../helpers/client.js";
import { createCommandWorker, expectAlive, expectCode, uniqueName, useServer } from "../helpers/fixture.js";

const fx = useServer();
const echoArgs = () => encodeCommandArgs({ command: "echo", args: ["x"] });

describe("bad input", () => {
  afterEach(async (ctx) => {
    // every rejection must leave the server serving
    if (ctx.task.result?.state !== "fail") await expectAlive(fx);
  });

  it("malformed args bytes (ff ff ff) for a COMMAND worker -> INVALID_ARGUMENT (NO_RESULT and DIRECT)", async () => {
    for (const response_type of ["NO_RESULT", "DIRECT"]) {
      const workerId = await createCommandWorker(fx.api, { response_type });
      const err = await expectRpcError(
        fx.api.job.Enqueue({ worker_id: { value: workerId }, args: Buffer.from([0xff, 0xff, 0xff]) }, { timeoutMs: 10_000 }),
      );
      expectCode(err, Status.INVALID_ARGUMENT);
    }
  });

  it("unknown worker id / unknown worker name -> NOT_FOUND", async () => {
    let err = await expectRpcError(fx.api.job.Enqueue({ worker_id: { value: "987654321" }, args: echoArgs() }));
    expectCode(err, Status.NOT_FOUND);
    err = await expectRpcError(fx.api.job.Enqueue({ worker_name: uniqueName("no-such-worker"), args: echoArgs() }));
    expectCode(err, Status.NOT_FOUND);
    const s = await collectSettled(fx.api.job.EnqueueForStream({ worker_name: uniqueName("no-such-worker"), args: echoArgs() }));
    expect(s.error).not.toBeNull();
    expectCode(s.error!, Status.NOT_FOUND);
  });

  it("JobRequest without a worker -> INVALID_ARGUMENT", async () => {
    const err = await expectRpcError(fx.api.job.Enqueue({ args: echoArgs() }));
    expectCode(err, Status.INVALID_ARGUMENT);
  });

  it("priority 7 in JobRequest (raw protobuf) -> INVALID_ARGUMENT", async () => {
    const workerId = await createCommandWorker(fx.api);
    const err = await expectRpcError(
      rawUnaryTyped(fx.server.address, "JobService", "Enqueue", { worker_id: { value: workerId }, args: echoArgs(), priority: 7 }),
    );
    expectCode(err, Status.INVALID_ARGUMENT);
  });

  it("response_type 9 in WorkerData (raw protobuf) -> INVALID_ARGUMENT; nothing is created", async () => {
    const name = uniqueName("bad-enum");
    const err = await expectRpcError(
      rawUnaryTyped(fx.server.address, "WorkerService", "Create", {
        name,
        runner_id: { value: COMMAND_RUNNER_ID },
        response_type: 9,
      }),
    );
    expectCode(err, Status.INVALID_ARGUMENT);
    expect((await fx.api.worker.FindByName({ name })).response.data).toBeUndefined();
  });

  it("unknown runner_id in WorkerData -> NOT_FOUND or INVALID_ARGUMENT; nothing is created", async () => {
    const name = uniqueName("bad-runner");
    const err = await expectRpcError(
      fx.api.worker.Create({ name, runner_id: { value: 999_999 }, response_type: "NO_RESULT" }),
    );
    expectCode(err, Status.NOT_FOUND, Status.INVALID_ARGUMENT);
    expect((await fx.api.worker.FindByName({ name })).response.data).toBeUndefined();
  });

  it("a periodic worker that answers DIRECT -> INVALID_ARGUMENT", async () => {
    const err = await expectRpcError(
      fx.api.worker.Create({
        name: uniqueName("periodic-direct"),
        runner_id: { value: COMMAND_RUNNER_ID },
        periodic_interval: 1000,
        response_type: "DIRECT",
      }),
    );
    expectCode(err, Status.INVALID_ARGUMENT);
  });

  it("negative run_after_time -> INVALID_ARGUMENT", async () => {
    const workerId = await createCommandWorker(fx.api);
    const err = await expectRpcError(
      fx.api.job.Enqueue({ worker_id: { value: workerId }, args: echoArgs(), run_after_time: "-1000" }),
    );
    expectCode(err, Status.INVALID_ARGUMENT);
  });

  it("run_after_time with a DIRECT worker -> INVALID_ARGUMENT", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "DIRECT" });
    const err = await expectRpcError(
      fx.api.job.Enqueue(
        { worker_id: { value: workerId }, args: echoArgs(), run_after_time: Date.now() + 1000 },
        { timeoutMs: 10_000 },
      ),
    );
    expectCode(err, Status.INVALID_ARGUMENT);
  });

  it("oversized payload (5 MB args) -> RESOURCE_EXHAUSTED or INVALID_ARGUMENT", async () => {
    const workerId = await createCommandWorker(fx.api);
    const args = encodeCommandArgs({ command: "cat", stdin: "x".repeat(5 * 1024 * 1024) });
    expect(args.length).toBeGreaterThan(5 * 1024 * 1024);
    const err = await expectRpcError(fx.api.job.Enqueue({ worker_id: { value: workerId }, args }, { timeoutMs: 15_000 }));
    expectCode(err, Status.RESOURCE_EXHAUSTED, Status.INVALID_ARGUMENT);
  });

  it("a malformed whole request message (raw bytes) -> INVALID_ARGUMENT or INTERNAL, never a crash", async () => {
    const bodies = [
      Buffer.from([0x0a, 0x05, 0x61]), // field 1, length 5 but 1 byte follows
      Buffer.from([0xff, 0xff, 0xff]), // truncated varint tag
      Buffer.from([0x0f]), // wire type 7 does not exist
    ];
    for (const path of ["/jobworkerp.service.WorkerService/Create", "/jobworkerp.service.JobService/Enqueue"]) {
      for (const body of bodies) {
        const err = await expectRpcError(rawUnary(fx.server.address, path, body));
        expectCode(err, Status.INVALID_ARGUMENT, Status.INTERNAL);
      }
    }
    // a request type with a scalar field 1 (JobId.value is int64): wrong wire type and truncated
    const err = await expectRpcError(rawUnary(fx.server.address, "/jobworkerp.service.JobService/Find", bodies[0]));
    expectCode(err, Status.INVALID_ARGUMENT, Status.INTERNAL);
  });

  it("duplicate worker name -> ALREADY_EXISTS", async () => {
    const name = uniqueName("dup");
    await createCommandWorker(fx.api, { name });
    const err = await expectRpcError(
      fx.api.worker.Create({ name, runner_id: { value: COMMAND_RUNNER_ID }, response_type: "NO_RESULT" }),
    );
    expectCode(err, Status.ALREADY_EXISTS);
  });

  it("duplicate uniq_key of a pending job -> ALREADY_EXISTS", async () => {
    const workerId = await createCommandWorker(fx.api);
    const uniq_key = uniqueName("uniq");
    const first = await fx.api.job.Enqueue({
      worker_id: { value: workerId },
      args: echoArgs(),
      uniq_key,
      run_after_time: Date.now() + 60_000,
    });
    try {
      const err = await expectRpcError(
        fx.api.job.Enqueue({ worker_id: { value: workerId }, args: echoArgs(), uniq_key, run_after_time: Date.now() + 60_000 }),
      );
      expectCode(err, Status.ALREADY_EXISTS);
      const err2 = await expectRpcError(fx.api.job.Enqueue({ worker_id: { value: workerId }, args: echoArgs(), uniq_key }));
      expectCode(err2, Status.ALREADY_EXISTS);
    } finally {
      await fx.api.job.Delete(first.response.id);
    }
  });

  it("uniq_key longer than the stores keep (255 characters) -> INVALID_ARGUMENT; 255 is accepted and stored", async () => {
    const workerId = await createCommandWorker(fx.api);
    const err = await expectRpcError(fx.api.job.Enqueue({ worker_id: { value: workerId }, args: echoArgs(), uniq_key: "k".repeat(256) }));
    expectCode(err, Status.INVALID_ARGUMENT);
    // a scheduled job is a stored row: its uniq_key column takes the longest accepted key
    const ok = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: echoArgs(), uniq_key: uniqueName("u").padEnd(255, "k"), run_after_time: Date.now() + 60_000 });
    await fx.api.job.Delete(ok.response.id);
    await expectAlive(fx);
  });

  it("Listen / ListenStream / ListenByWorker on a worker without broadcast_results -> FAILED_PRECONDITION", async () => {
    const workerId = await createCommandWorker(fx.api, { broadcast_results: false });
    const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("sleep 0.3") });
    const req = { job_id: response.id, worker_id: { value: workerId }, timeout: 3000 };
    const err = await expectRpcError(fx.api.jobResult.Listen(req, { timeoutMs: 5000 }));
    expectCode(err, Status.FAILED_PRECONDITION);
    const ls = await collectSettled(fx.api.jobResult.ListenStream(req), 5000);
    expect(ls.error).not.toBeNull();
    expectCode(ls.error!, Status.FAILED_PRECONDITION);
    const tap = new StreamTap(fx.api.jobResult.ListenByWorker({ worker_id: { value: workerId } }));
    try {
      expectCode(await tap.waitForError(5000), Status.FAILED_PRECONDITION);
    } finally {
      tap.close();
    }
  });
});
