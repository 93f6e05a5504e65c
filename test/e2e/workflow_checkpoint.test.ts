// Acceptance: a checkpointed workflow killed mid-way resumes from its checkpoint (same execution_id,
// from_checkpoint) after a SIGKILL + restart on the same data, completes with the output of an uninterrupted
// run, and the task before the checkpoint does not run again (its COMMAND appends a line to a file).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Api } from "../helpers/client.js";
import { serverApi, uniqueName, waitUntil } from "../helpers/fixture.js";
import { servedCodec } from "../helpers/served_protos.js";
import { type ServerHandle, startServer } from "../helpers/server.js";

const servers: ServerHandle[] = [];
const apis: Api[] = [];
const dirs: string[] = [];
afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") servers.forEach((s, i) => console.error(`--- server #${i + 1} output ---\n${s.logs().slice(-8000)}`));
});
afterAll(async () => {
  apis.forEach((a) => a.close());
  for (const s of servers) await s.stop("SIGTERM", 5000);
  for (const d of dirs) {
    // the slow task's process outlives a killed server: end it
    const pidFile = join(d, "slow.pid");
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(d, { recursive: true, force: true });
  }
});

// `slow` sleeps until the test creates the file `fast` (the first, killed run never gets there)
const WF = `document: {dsl: 1.0.0, namespace: e2e, name: checkpointed, version: 1.0.0}
checkpointing: {enabled: true, storage: memory}
do:
  - first:
      run:
        runner:
          name: COMMAND
          arguments: {command: /bin/sh, args: ["-c", '\${ "echo ran >> " + .dir + "/first.log; printf one" }']}
      output: {as: '{first: .stdout, dir: $input.dir}'}
      checkpoint: true
  - slow:
      run:
        runner:
          name: COMMAND
          arguments: {command: /bin/sh, args: ["-c", '\${ "cd " + .dir + "; echo ran >> slow.log; if [ ! -f fast ]; then echo $$ > slow.pid; exec sleep 60; fi; printf two" }']}
      output: {as: '{first: $input.first, slow: .stdout}'}
      checkpoint: true
  - last:
      set: {result: '\${ .first + "-" + .slow }', n: '\${ [.first, .slow] | length }'}
`;

const lines = (f: string) => (existsSync(f) ? readFileSync(f, "utf8").trim().split("\n").length : 0);

describe("WORKFLOW checkpoints across a crash", () => {
  it("resumes after SIGKILL + restart from the checkpoint, with the uninterrupted run's output", async () => {
    // the first run's workflow job goes to a channel only this server serves: after the crash the queue would
    // hand it out again (at-least-once; scalable leases run out) and start it over from scratch
    const s1 = await startServer({ env: { WORKER_CHANNELS: "wf-crash" } });
    servers.push(s1);
    const api1 = serverApi(s1);
    apis.push(api1);
    const wf = await servedCodec(api1, "WORKFLOW");
    const worker = async (api: Api, responseType: "DIRECT" | "NO_RESULT", channel?: string) =>
      (await api.worker.Create({ name: uniqueName("wf-cp"), runner_id: { value: 32769 }, runner_settings: wf.encodeSettings({}), response_type: responseType, retry_policy: { type: "NONE" }, channel })).response.id.value;
    const background = await worker(api1, "NO_RESULT", "wf-crash");
    const direct = await worker(api1, "DIRECT");
    const runDirect = async (api: Api, args: Record<string, unknown>) => {
      const { response } = await api.job.Enqueue({ worker_id: { value: direct }, args: wf.encodeArgs(args, "run"), timeout: 60_000 }, { timeoutMs: 90_000 });
      expect(response.result!.data.status).toBe("SUCCESS");
      return wf.decodeResult(response.result!.data.output!.items, "run");
    };

    // the reference: an uninterrupted run
    const refDir = mkdtempSync(join(tmpdir(), "e2e-wf-cp-ref-"));
    dirs.push(refDir);
    writeFileSync(join(refDir, "fast"), "");
    const ref = await runDirect(api1, { workflow_data: WF, input: JSON.stringify({ dir: refDir }), execution_id: uniqueName("ref") });
    expect(ref.status ?? "Completed", ref.error_message).toBe("Completed");
    expect(JSON.parse(ref.output)).toEqual({ result: "one-two", n: 2 });

    // the interrupted run: killed while `slow` runs (so after `first`'s checkpoint was saved)
    const dir = mkdtempSync(join(tmpdir(), "e2e-wf-cp-"));
    dirs.push(dir);
    const executionId = uniqueName("exec");
    const started = await api1.job.Enqueue({ worker_id: { value: background }, args: wf.encodeArgs({ workflow_data: WF, input: JSON.stringify({ dir }), execution_id: executionId }, "run"), timeout: 120_000 });
    const jobId = started.response.id.value;
    await waitUntil(() => existsSync(join(dir, "slow.pid")), { timeoutMs: 30_000, what: "the slow task to start" });
    await s1.kill();
    api1.close();
    expect(lines(join(dir, "first.log"))).toBe(1);

    const s2 = await startServer({ sqlitePath: s1.sqlitePath });
    servers.push(s2);
    const api2 = serverApi(s2);
    apis.push(api2);
    // the killed job may be queued again (scalable): remove it so it never starts over
    await api2.job.Delete({ value: jobId }).catch(() => undefined);
    writeFileSync(join(dir, "fast"), "");
    const resumed = await runDirect(api2, { workflow_data: WF, input: "{}", execution_id: executionId, from_checkpoint: { position: "/do/0/first" } });
    expect(resumed.status ?? "Completed", resumed.error_message).toBe("Completed");
    expect(JSON.parse(resumed.output)).toEqual(JSON.parse(ref.output));
    expect(lines(join(dir, "first.log")), "the task before the checkpoint ran again").toBe(1);
    // the interrupted task runs again (scalable: its own child job may also be handed out again)
    expect(lines(join(dir, "slow.log")), "the interrupted task runs again").toBeGreaterThanOrEqual(2);

    // an unknown checkpoint is a clear fault, not a crash
    const missing = await runDirect(api2, { workflow_data: WF, input: "{}", execution_id: uniqueName("none"), from_checkpoint: { position: "/do/1/slow" } });
    expect(missing.status).toBe("Faulted");
    expect(JSON.parse(missing.error_message)).toMatchObject({ status: 400, title: "cannot resume" });
  }, 120_000);
});
