// Durability across a graceful restart on the same SQLite file.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Api, COMMAND_RUNNER_ID, collect, commandOutput, shArgs } from "../helpers/client.js";
import { listen, serverApi, uniqueName, waitUntil } from "../helpers/fixture.js";
import { type ServerHandle, startServer } from "../helpers/server.js";

const servers: ServerHandle[] = [];
const apis: Api[] = [];
afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") {
    servers.forEach((s, i) => console.error(`--- server #${i + 1} output (last 8000 chars) ---\n${s.logs().slice(-8000)}`));
  }
});
afterAll(async () => {
  apis.forEach((a) => a.close());
  for (const s of servers) await s.stop("SIGTERM", 5000);
});

describe("restart", () => {
  it("workers, stored results and a scheduled job survive SIGTERM + restart on the same SQLite file", async () => {
    const s1 = await startServer();
    servers.push(s1);
    const api1 = serverApi(s1);
    apis.push(api1);

    const name = uniqueName("durable");
    const created = await api1.worker.Create({
      name,
      description: "survives restarts",
      runner_id: { value: COMMAND_RUNNER_ID },
      response_type: "NO_RESULT",
      store_success: true,
      broadcast_results: true,
      channel: "__default_job_channel__",
    });
    const workerId = created.response.id.value;

    // one job that runs now and is stored
    const ran = await api1.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("echo before-restart") });
    const ranJobId = ran.response.id.value;
    const r1 = await listen(api1, ranJobId, workerId);
    expect(r1.data.status).toBe("SUCCESS");
    const stored1 = await waitUntil(
      async () => (await collect(api1.jobResult.FindListBy({ worker_ids: [{ value: workerId }] }))).find((r) => r.data.job_id.value === ranJobId),
      { timeoutMs: 3000, what: "stored result before restart" },
    );

    // one job scheduled for later
    const runAfter = Date.now() + 3000;
    const scheduled = await api1.job.Enqueue({
      worker_id: { value: workerId },
      args: shArgs("echo scheduled"),
      run_after_time: runAfter,
    });
    const scheduledJobId = scheduled.response.id.value;

    const code = await s1.stop("SIGTERM");
    expect(code, `exit code after SIGTERM\n${s1.logs().slice(-4000)}`).toBe(0);
    api1.close();
    expect(Date.now(), "restart must happen before the scheduled time for this test to mean anything").toBeLessThan(runAfter);

    const s2 = await startServer({ sqlitePath: s1.sqlitePath });
    servers.push(s2);
    const api2 = serverApi(s2);
    apis.push(api2);

    const found = await api2.worker.Find({ value: workerId });
    expect(found.response.data?.data.name).toBe(name);
    expect(found.response.data?.data.description).toBe("survives restarts");
    expect(found.response.data?.data.store_success).toBe(true);
    const byName = await api2.worker.FindByName({ name });
    expect(byName.response.data?.id.value).toBe(workerId);

    const stored2 = (await collect(api2.jobResult.FindListBy({ worker_ids: [{ value: workerId }] }))).find(
      (r) => r.data.job_id.value === ranJobId,
    );
    expect(stored2, "result stored before the restart").toBeDefined();
    expect(stored2!.id.value).toBe(stored1.id.value);
    expect(commandOutput(stored2).stdout).toBe("before-restart\n");
    const one = await api2.jobResult.Find({ value: stored1.id.value });
    expect(one.response.data?.data.job_id.value).toBe(ranJobId);

    // the scheduled job still runs, not before its time
    const scheduledResult = await waitUntil(
      async () =>
        (await collect(api2.jobResult.FindListBy({ worker_ids: [{ value: workerId }] }))).find(
          (r) => r.data.job_id.value === scheduledJobId,
        ),
      { timeoutMs: Math.max(0, runAfter - Date.now()) + 5000, intervalMs: 200, what: "scheduled job's result after restart" },
    );
    expect(scheduledResult.data.status).toBe("SUCCESS");
    expect(commandOutput(scheduledResult).stdout).toBe("scheduled\n");
    expect(Number(scheduledResult.data.start_time)).toBeGreaterThanOrEqual(runAfter);
  });
});
