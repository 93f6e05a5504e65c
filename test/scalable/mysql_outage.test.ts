// Scalable acceptance: MySQL going away is an outage, not a hang or a crash. While MariaDB is down, RPCs that
// need it answer UNAVAILABLE promptly (well under 5 s each); once it is back, the very same processes serve
// again (create a worker, run a DIRECT job, read stored results) without being restarted.
// The cluster runs on a MariaDB of this file's own (startMariadb), so stopping it disturbs no other file.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type Api, COMMAND_RUNNER_ID, Status, codeName, collectSettled, commandOutput, shArgs } from "../helpers/client.js";
import { uniqueName, waitUntil } from "../helpers/fixture.js";
import { startMariadb } from "../helpers/services.js";
import { useHarness } from "./support.js";

const h = useHarness();
const PROMPT_MS = 3000; // "well under 5 s"
const DEADLINE_MS = 10_000; // a hang shows as DEADLINE_EXCEEDED, not as a stuck test

const noRetry = { type: "NONE", interval: 0, max_interval: 0, max_retry: 0, basis: 0 };

/** Runs a call and returns its gRPC status code name and how long it took. */
async function timed(what: string, call: () => Promise<unknown>): Promise<{ what: string; code: string; ms: number; details: string }> {
  const t0 = Date.now();
  try {
    await call();
    return { what, code: "OK", ms: Date.now() - t0, details: "" };
  } catch (e) {
    const err = e as { code?: number; details?: string };
    return { what, code: codeName(err.code), ms: Date.now() - t0, details: err.details ?? String(e) };
  }
}

async function findListBy(api: Api, workerId: string): Promise<unknown[]> {
  const r = await collectSettled(api.jobResult.FindListBy({ worker_ids: [{ value: workerId }] }, { timeoutMs: DEADLINE_MS }), DEADLINE_MS + 2000);
  if (r.error) throw r.error;
  return r.items;
}

describe("Scalable: MySQL outage", () => {
  it("RPCs needing MySQL answer UNAVAILABLE promptly while it is down; the same processes serve again once it is back", { timeout: 90_000 }, async () => {
    const mariadb = h.own(await startMariadb());
    const c = await h.cluster({
      fronts: 1,
      workers: 1,
      state: { mysqlUrl: mariadb.url, redisPrefix: `outage-${randomBytes(6).toString("hex")}` },
    });
    const api = h.api(c.addresses[0]);
    const procs = [...c.fronts, ...c.workers];
    const pids = procs.map((p) => p.pid);

    // Before: a DIRECT job runs; a second worker exists that this front has never looked up (no cached copy).
    const direct = (
      await api.worker.Create({ name: uniqueName("outage-direct"), runner_id: { value: COMMAND_RUNNER_ID }, response_type: "DIRECT", store_success: true, retry_policy: noRetry })
    ).response.id.value;
    const before = (await api.job.Enqueue({ worker_id: { value: direct }, args: shArgs("echo before") })).response.result;
    expect(before?.data.status).toBe("SUCCESS");
    expect(commandOutput(before).stdout).toBe("before\n");
    const otherName = uniqueName("outage-other");
    const other = (await api.worker.Create({ name: otherName, runner_id: { value: COMMAND_RUNNER_ID }, response_type: "NO_RESULT" })).response.id.value;
    expect((await findListBy(api, direct)).length).toBe(1);

    await mariadb.stop({ kill: true }); // a crash: connections reset, new ones refused
    const opts = { timeoutMs: DEADLINE_MS };
    const calls: [string, () => Promise<unknown>][] = [
      ["WorkerService.Create", () => api.worker.Create({ name: uniqueName("outage-new"), runner_id: { value: COMMAND_RUNNER_ID } }, opts)],
      ["WorkerService.Find", () => api.worker.Find({ value: other }, opts)],
      ["WorkerService.FindByName", () => api.worker.FindByName({ name: otherName }, opts)],
      ["JobResultService.FindListBy", () => findListBy(api, direct)],
      ["JobResultService.CountBy", () => api.jobResult.CountBy({ worker_ids: [{ value: direct }] }, opts)],
    ];
    const outcomes = [];
    for (let round = 1; round <= 2; round++) {
      for (const [what, call] of calls) outcomes.push(await timed(`${what} #${round}`, call));
    }
    const table = outcomes.map((o) => `${o.what}: ${o.code} in ${o.ms} ms${o.details ? ` (${o.details.slice(0, 120)})` : ""}`).join("\n");
    console.log(`[mysql_outage] while MariaDB is down:\n${table}`);
    h.note(table);
    for (const o of outcomes) {
      expect(o.code, `${o.what}: ${o.details}`).toBe(codeName(Status.UNAVAILABLE));
      expect(o.ms, `${o.what} answered promptly`).toBeLessThan(PROMPT_MS);
    }
    // The outage lasts a moment longer (the clock keeps polling, heartbeats go on): nobody crashes.
    await new Promise((r) => setTimeout(r, 1500));
    for (const p of procs) expect(p.exited(), `${p.role} ${p.pid} survived the outage`).toBe(false);

    await mariadb.start();
    const downUntil = Date.now();
    // The same processes serve again: create a worker, run a DIRECT job on it, read stored results.
    const created = await waitUntil(
      async () =>
        (
          await api.worker.Create({
            name: uniqueName("outage-after"),
            runner_id: { value: COMMAND_RUNNER_ID },
            response_type: "DIRECT",
            store_success: true,
            retry_policy: noRetry,
          }, opts)
        ).response.id.value,
      { timeoutMs: 15_000, intervalMs: 200, what: "WorkerService.Create to succeed again" },
    );
    const recoveredMs = Date.now() - downUntil;
    const after = (await api.job.Enqueue({ worker_id: { value: created }, args: shArgs("echo after") }, { timeoutMs: DEADLINE_MS })).response.result;
    expect(after?.data.status).toBe("SUCCESS");
    expect(commandOutput(after).stdout).toBe("after\n");
    expect((await api.worker.Find({ value: other })).response.data?.data.name).toBe(otherName);
    expect((await findListBy(api, created)).length, "the new result is stored").toBe(1);
    expect((await findListBy(api, direct)).length, "the result from before the outage is still there").toBe(1);
    console.log(`[mysql_outage] serving again ${recoveredMs} ms after MariaDB accepted connections again`);
    expect(procs.map((p) => p.pid)).toEqual(pids);
    for (const p of procs) expect(p.exited(), `${p.role} ${p.pid} was not restarted`).toBe(false);
  });
});
