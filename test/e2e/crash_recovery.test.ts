// "No job is lost" in the embedded shape: durable jobs (WITH_BACKUP, scheduled, periodic) survive a SIGKILL
// of the server, even mid-run, and run after the next start on the same SQLite file.
import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Api, COMMAND_RUNNER_ID, collect, commandOutput, shArgs } from "../helpers/client.js";
import { serverApi, uniqueName, waitUntil } from "../helpers/fixture.js";
import { type ServerHandle, startServer } from "../helpers/server.js";

const servers: ServerHandle[] = [];
const apis: Api[] = [];
const orphans: number[] = [];
afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") {
    servers.forEach((s, i) => console.error(`--- server #${i + 1} output ---\n${s.logs().slice(-6000)}`));
  }
});
afterAll(async () => {
  apis.forEach((a) => a.close());
  for (const s of servers) await s.stop("SIGTERM", 5000);
  for (const pid of orphans) {
    try {
      process.kill(-pid, "SIGKILL"); // a COMMAND job leads its own process group
    } catch {
      /* already gone */
    }
  }
});

async function start(sqlitePath?: string) {
  const s = await startServer({ sqlitePath });
  servers.push(s);
  const api = serverApi(s);
  apis.push(api);
  return { s, api };
}

const resultsOf = async (api: Api, workerId: string) => collect(api.jobResult.FindListBy({ worker_ids: [{ value: workerId }] }));

describe("crash recovery (SIGKILL)", () => {
  it("a WITH_BACKUP job killed mid-run, a scheduled job and a periodic worker all run after a restart", async () => {
    const { s: s1, api: api1 } = await start();
    const marks = path.join(s1.tmpDir, "marks.log");
    const mk = async (extra: object) =>
      (
        await api1.worker.Create({
          name: uniqueName("crash"),
          runner_id: { value: COMMAND_RUNNER_ID },
          response_type: "NO_RESULT",
          store_success: true,
          ...extra,
        })
      ).response.id.value;
    const backup = await mk({ queue_type: "WITH_BACKUP" });
    const plain = await mk({});
    const periodic = await mk({ periodic_interval: 300 });

    // a WITH_BACKUP job that is running when the server dies
    const job = (
      await api1.job.Enqueue({ worker_id: { value: backup }, args: shArgs(`echo "start $$" >> '${marks}'; sleep 1.5; echo finished`) })
    ).response.id.value;
    // a scheduled job, due after the crash
    const runAfter = Date.now() + 2500;
    const scheduled = (await api1.job.Enqueue({ worker_id: { value: plain }, args: shArgs("echo later"), run_after_time: runAfter })).response.id.value;
    // a periodic worker, armed before the crash
    await api1.job.Enqueue({ worker_id: { value: periodic }, args: shArgs("echo tick") });

    await waitUntil(() => fs.existsSync(marks) && fs.readFileSync(marks, "utf8").includes("start"), { timeoutMs: 5000, what: "job started" });
    orphans.push(Number(fs.readFileSync(marks, "utf8").trim().split(" ")[1]));
    await s1.kill(); // SIGKILL: no shutdown hooks run
    expect(await resultsOf(api1, backup).catch(() => [])).toEqual([]);

    const { api: api2 } = await start(s1.sqlitePath);
    const rerun = await waitUntil(async () => (await resultsOf(api2, backup)).find((r) => r.data.job_id.value === job), {
      timeoutMs: 10_000,
      intervalMs: 200,
      what: "the WITH_BACKUP job's result after the restart",
    });
    expect(rerun.data.status).toBe("SUCCESS");
    expect(commandOutput(rerun).stdout).toBe("finished\n");
    expect(fs.readFileSync(marks, "utf8").trim().split("\n"), "ran once before the crash and once after").toHaveLength(2);

    const later = await waitUntil(async () => (await resultsOf(api2, plain)).find((r) => r.data.job_id.value === scheduled), {
      timeoutMs: Math.max(0, runAfter - Date.now()) + 8000,
      intervalMs: 200,
      what: "the scheduled job's result",
    });
    expect(commandOutput(later).stdout).toBe("later\n");
    expect(Number(later.data.start_time)).toBeGreaterThanOrEqual(runAfter);

    const restartedAt = Date.now();
    await waitUntil(async () => (await resultsOf(api2, periodic)).filter((r) => Number(r.data.start_time) >= restartedAt).length >= 2, {
      timeoutMs: 5000,
      intervalMs: 100,
      what: "the periodic worker ticking again after the restart",
    });
  });
});
