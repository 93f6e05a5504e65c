// DIRECT responses, Listen (concurrent and late) and ListenByWorker.
import { describe, expect, it } from "vitest";
import {
  StreamTap,
  commandOutput,
  encodeCommandArgs,
  shArgs,
  type JobResult,
} from "../helpers/client.js";
import { createCommandWorker, listen, sleep, uniqueName, useServer } from "../helpers/fixture.js";

const fx = useServer({ env: { WORKER_CHANNELS: "serial", WORKER_CHANNEL_CONCURRENCIES: "1" } });

describe("DIRECT and Listen", () => {
  it("DIRECT `echo hello` returns exit code 0 and stdout 'hello\\n' in the Enqueue response", async () => {
    const name = uniqueName("direct-echo");
    const workerId = await createCommandWorker(fx.api, { name, response_type: "DIRECT" });
    const args = encodeCommandArgs({ command: "echo", args: ["hello"] });
    const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args }, { timeoutMs: 15_000 });
    expect(Number(response.id.value)).toBeGreaterThan(0);
    expect(response.result, "DIRECT Enqueue must carry the result").toBeDefined();
    const r = response.result!;
    expect(r.data.status).toBe("SUCCESS");
    expect(r.data.job_id.value).toBe(response.id.value);
    expect(r.data.worker_id.value).toBe(workerId);
    expect(r.data.worker_name).toBe(name);
    expect(r.data.response_type).toBe("DIRECT");
    expect(Buffer.compare(r.data.args, args)).toBe(0);
    expect(Number(r.data.end_time)).toBeGreaterThanOrEqual(Number(r.data.start_time));
    const out = commandOutput(r);
    expect(out.exit_code).toBe(0);
    expect(out.stdout).toBe("hello\n");

    // by worker name too
    const byName = await fx.api.job.Enqueue(
      { worker_name: name, args: encodeCommandArgs({ command: "echo", args: ["-n", "by", "name"] }) },
      { timeoutMs: 15_000 },
    );
    expect(commandOutput(byName.response.result).stdout).toBe("by name");
  });

  it("NO_RESULT + broadcast_results: Enqueue returns at once and two concurrent Listen calls both get the result", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "NO_RESULT", broadcast_results: true });
    const t0 = Date.now();
    const { response } = await fx.api.job.Enqueue({
      worker_id: { value: workerId },
      args: shArgs("sleep 0.6; echo done"),
    });
    expect(Date.now() - t0, "NO_RESULT Enqueue must not wait for the job").toBeLessThan(550);
    expect(response.result, "NO_RESULT Enqueue carries no result").toBeUndefined();
    const jobId = response.id.value;
    const [a, b] = await Promise.all([listen(fx.api, jobId, workerId), listen(fx.api, jobId, workerId)]);
    for (const r of [a, b]) {
      expect(r.data.job_id.value).toBe(jobId);
      expect(r.data.status).toBe("SUCCESS");
      expect(commandOutput(r).stdout).toBe("done\n");
    }
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
  });

  it("Listen after the job completed still gets its result", async () => {
    const workerId = await createCommandWorker(fx.api, { response_type: "NO_RESULT", broadcast_results: true });
    const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("echo late") });
    const jobId = response.id.value;
    const first = await listen(fx.api, jobId, workerId); // the job is finished once this returns
    expect(first.data.status).toBe("SUCCESS");
    await sleep(200);
    const late = await listen(fx.api, jobId, workerId, 3000);
    expect(late.data.job_id.value).toBe(jobId);
    expect(late.data.status).toBe("SUCCESS");
    expect(commandOutput(late).stdout).toBe("late\n");
  });

  it("ListenByWorker receives 3 results in completion order (single-concurrency channel)", async () => {
    const workerId = await createCommandWorker(fx.api, {
      response_type: "NO_RESULT",
      broadcast_results: true,
      channel: "serial",
    });
    const tap = new StreamTap<JobResult>(fx.api.jobResult.ListenByWorker({ worker_id: { value: workerId } }));
    try {
      await sleep(300); // let the subscription register before anything can finish
      const ids: string[] = [];
      for (const n of [1, 2, 3]) {
        const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`sleep 0.1; echo ${n}`) });
        ids.push(response.id.value);
      }
      const results = await tap.waitFor(3, 10_000);
      expect(results.map((r) => r.data.job_id.value)).toEqual(ids);
      expect(results.map((r) => commandOutput(r).stdout)).toEqual(["1\n", "2\n", "3\n"]);
      for (const r of results) {
        expect(r.data.worker_id.value).toBe(workerId);
        expect(r.data.status).toBe("SUCCESS");
      }
      // results of another worker must not leak into this stream
      const other = await createCommandWorker(fx.api, { response_type: "DIRECT", broadcast_results: true });
      await fx.api.job.Enqueue({ worker_id: { value: other }, args: shArgs("echo other") }, { timeoutMs: 10_000 });
      await sleep(300);
      expect(tap.items.length).toBe(3);
      expect(tap.error).toBeNull();
    } finally {
      tap.close();
    }
  });
});
