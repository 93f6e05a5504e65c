// EnqueueForStream and cancellation of running jobs via JobService.Delete.
import { describe, expect, it } from "vitest";
import {
  type JobResult,
  Status,
  collect,
  collectSettled,
  decodeCommandResult,
  grpc,
  jobIdFromHeaders,
  jobResultFromTrailers,
  shArgs,
} from "../helpers/client.js";
import { createCommandWorker, expectCode, listen, useServer, waitUntil } from "../helpers/fixture.js";

const fx = useServer();

describe("streaming", () => {
  it("EnqueueForStream delivers CommandResult data chunks, then `end`; header x-job-id-bin is the job id", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "NO_RESULT", store_success: true });
    const out = await collectSettled(
      fx.api.job.EnqueueForStream({ worker_id: { value: workerId }, args: shArgs("echo a; sleep 0.2; echo b") }),
      15_000,
    );
    expect(out.error, `stream error: ${out.error?.details}`).toBeNull();
    expect(out.status?.code).toBe(Status.OK);
    const items = out.items;
    expect(items.length).toBeGreaterThanOrEqual(2);
    const last = items[items.length - 1];
    expect(last.item, "last item is the end trailer").toBe("end");
    expect(last.end).toBeDefined();
    const data = items.slice(0, -1);
    expect(data.length, "at least one data chunk").toBeGreaterThanOrEqual(1);
    for (const it of data) expect(it.item, "only data chunks before end").toBe("data");
    const chunks = data.map((it) => decodeCommandResult(it.data!));
    const stdout = chunks.map((c) => c.stdout ?? "").join("");
    expect(stdout).toBe("a\nb\n");

    const jobId = jobIdFromHeaders(out.headers);
    expect(jobId, "x-job-id-bin response header").toBeDefined();
    expect(Number(jobId!.value)).toBeGreaterThan(0);
    // the header names the job that actually ran: its stored result carries the same id
    const stored = await waitUntil(
      async () => {
        const rs = await collect(fx.api.jobResult.FindListByJobId({ job_id: { value: jobId!.value } }));
        return rs.length ? rs : null;
      },
      { timeoutMs: 3000, what: "stored result of the streamed job" },
    );
    expect(stored[0].data.job_id.value).toBe(jobId!.value);
    expect(stored[0].data.worker_id.value).toBe(workerId);
    expect(stored[0].data.status).toBe("SUCCESS");
  });

  it("a failing streamed job ends with a gRPC error and x-job-result-bin (non-zero exit as error, no retry -> MAX_RETRY/ABORTED)", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "NO_RESULT" });
    const out = await collectSettled(
      fx.api.job.EnqueueForStream({
        worker_id: { value: workerId },
        args: shArgs("echo partial; exit 3", { treat_nonzero_as_error: true }),
      }),
      15_000,
    );
    expect(out.error, "stream must fail").not.toBeNull();
    const jr = jobResultFromTrailers(out.error!.metadata);
    expect(jr, "x-job-result-bin trailer").toBeDefined();
    expect(jr!.data.status).not.toBe("SUCCESS");
    const mapping: Record<string, number> = {
      ERROR_AND_RETRY: Status.UNAVAILABLE,
      MAX_RETRY: Status.ABORTED,
      OTHER_ERROR: Status.INTERNAL,
      FATAL_ERROR: Status.FAILED_PRECONDITION,
      ABORT: Status.ABORTED,
      CANCELLED: Status.CANCELLED,
    };
    expectCode(out.error!, mapping[jr!.data.status]);
    expect(jobIdFromHeaders(out.headers ?? out.error!.headers), "x-job-id-bin header").toBeDefined();
  });
});

describe("ListenStream", () => {
  it("a second client follows a streamed job's chunks with ListenStream (broadcast_results)", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "NO_RESULT", broadcast_results: true });
    const call = fx.api.job.EnqueueForStream({
      worker_id: { value: workerId },
      args: shArgs("sleep 0.4; echo one; sleep 0.3; echo two"),
    });
    const headers = await new Promise<grpc.Metadata>((resolve, reject) => {
      call.once("metadata", resolve);
      call.once("error", reject);
    });
    const producer = collectSettled(call, 15_000);
    const jobId = jobIdFromHeaders(headers)!.value;
    const follower = await collectSettled(
      fx.api.jobResult.ListenStream({ job_id: { value: jobId }, worker_id: { value: workerId }, timeout: 10_000 }),
      15_000,
    );
    const own = await producer;
    expect(own.error).toBeNull();
    expect(follower.error, `ListenStream error: ${follower.error?.details}`).toBeNull();
    expect(follower.items.at(-1)?.item).toBe("end");
    const seen = follower.items
      .filter((i) => i.item === "data")
      .map((i) => decodeCommandResult(i.data!).stdout ?? "")
      .join("");
    expect(seen).toContain("two\n");
    expect(jobIdFromHeaders(follower.headers)?.value, "ListenStream's x-job-id-bin").toBe(jobId);
  });
});

describe("cancellation", () => {
  it("Delete of a running `sleep 10` job makes its result CANCELLED (Listen with broadcast_results)", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "NO_RESULT", broadcast_results: true });
    const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("sleep 10") });
    const jobId = response.id.value;
    await waitUntil(async () => (await fx.api.jobStatus.Find({ value: jobId })).response.status === "RUNNING", {
      timeoutMs: 3000,
      what: "job RUNNING",
    });
    const t0 = Date.now();
    const listening = listen(fx.api, jobId, workerId, 8000);
    await new Promise((r) => setTimeout(r, 100));
    const del = await fx.api.job.Delete({ value: jobId });
    expect(del.response.is_success).toBe(true);
    const r: JobResult = await listening;
    expect(r.data.job_id.value).toBe(jobId);
    expect(r.data.status).toBe("CANCELLED");
    expect(Date.now() - t0, "cancelled promptly, not after the sleep").toBeLessThan(5000);
    await waitUntil(async () => (await fx.api.jobStatus.Find({ value: jobId })).response.status === undefined, {
      timeoutMs: 3000,
      what: "processing status cleared",
    });
  });

  it("Delete of a running DIRECT job answers its Enqueue with the CANCELLED result", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "DIRECT" });
    const t0 = Date.now();
    const pending = fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("sleep 10") }, { timeoutMs: 12_000 });
    // DIRECT Enqueue only answers at the end: find the job among the RUNNING ones
    const jobId = await waitUntil(
      async () => {
        const rows = await collect(fx.api.job.FindListWithProcessingStatus({ status: "RUNNING", limit: 100 }));
        return rows.find((r) => r.job?.data?.worker_id?.value === workerId)?.job.id.value;
      },
      { timeoutMs: 3000, what: "running DIRECT job" },
    );
    const del = await fx.api.job.Delete({ value: jobId });
    expect(del.response.is_success).toBe(true);
    const { response } = await pending;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(response.id.value).toBe(jobId);
    expect(response.result?.data.status).toBe("CANCELLED");
  });
});
