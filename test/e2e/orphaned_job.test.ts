// A job whose worker is deleted while it waits in the queue: its DIRECT caller is answered at once
// (a FATAL_ERROR result) instead of waiting out the job's timeout.
import { describe, expect, it } from "vitest";
import { shArgs } from "../helpers/client.js";
import { createCommandWorker, expectAlive, sleep, useServer } from "../helpers/fixture.js";

const fx = useServer({ env: { WORKER_CHANNELS: "single", WORKER_CHANNEL_CONCURRENCIES: "1" } });

describe("orphaned jobs", () => {
  it("a queued DIRECT job of a deleted worker fails fast with the worker-deleted error", async () => {
    const blocker = await createCommandWorker(fx.api, { channel: "single" });
    const victim = await createCommandWorker(fx.api, { channel: "single", response_type: "DIRECT" });
    await fx.api.job.Enqueue({ worker_id: { value: blocker }, args: shArgs("sleep 0.6") });
    await sleep(100); // the blocker holds the only slot
    const t0 = Date.now();
    const direct = fx.api.job.Enqueue({ worker_id: { value: victim }, args: shArgs("echo never"), timeout: 60_000 }, { timeoutMs: 20_000 });
    await sleep(100);
    await fx.api.worker.Delete({ value: victim });
    const { response } = await direct;
    expect(response.result?.data.status).toBe("FATAL_ERROR");
    expect(Buffer.from(response.result!.data.output!.items).toString()).toMatch(/deleted/);
    expect(Date.now() - t0, "answered when the job was dequeued, not after its 60 s timeout").toBeLessThan(5_000);
    await expectAlive(fx);
  });
});
