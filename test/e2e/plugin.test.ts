// PLUGIN runners through gRPC: the server loads the plugin modules of PLUGINS_RUNNER_DIR (here a temp dir
// linking plugins/hello and the throwing / hanging test plugins) at start-up; clients see their protos through
// RunnerService and encode settings and args with them. Plugin failures fail their jobs, never the server.
import { mkdtempSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { collectSettled } from "../helpers/client.js";
import { expectAlive, uniqueName, useServer } from "../helpers/fixture.js";
import { servedCodec, type ServedCodec } from "../helpers/served_protos.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const pluginDir = mkdtempSync(path.join(os.tmpdir(), "jobworkerp-plugins-"));
symlinkSync(path.join(ROOT, "plugins/hello"), path.join(pluginDir, "hello"));
for (const f of ["throwing", "hanging"]) symlinkSync(path.join(ROOT, `test/fixtures/plugins/${f}.ts`), path.join(pluginDir, `${f}.ts`));

const fx = useServer({ env: { PLUGINS_RUNNER_DIR: pluginDir } });

let hello: ServedCodec;
beforeAll(async () => {
  hello = await servedCodec(fx.api, "HelloPlugin");
});

async function createWorker(runnerId: string, settings: Uint8Array, extra: Record<string, unknown> = {}): Promise<string> {
  const { response } = await fx.api.worker.Create({
    name: uniqueName("plugin"),
    runner_id: { value: runnerId },
    runner_settings: Buffer.from(settings),
    response_type: "DIRECT",
    retry_policy: { type: "NONE" },
    ...extra,
  });
  return response.id.value;
}

async function enqueue(workerId: string, args: Uint8Array, timeout = 20_000) {
  const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args, timeout }, { timeoutMs: timeout + 10_000 });
  return response.result!.data;
}

/** The server still serves, and the hello plugin still runs a job. */
async function expectHelloStillWorks(): Promise<void> {
  await expectAlive(fx);
  const workerId = await createWorker(hello.runner.id.value, hello.encodeSettings({ greeting: "Still" }));
  const r = await enqueue(workerId, hello.encodeArgs({ name: "here" }));
  expect(r.status).toBe("SUCCESS");
  expect(hello.decodeResult(r.output!.items)).toEqual({ message: "Still, here!" });
}

describe("PLUGIN runners", () => {
  it("RunnerService lists the hello plugin as a PLUGIN runner with its proto texts", async () => {
    const r = hello.runner;
    expect(r.data.runner_type).toBe("PLUGIN");
    expect(r.data.definition).toBe(path.join(pluginDir, "hello/hello.ts")); // the path the server found it under
    expect(r.data.runner_settings_proto).toContain("message HelloSettings");
    const run = r.data.method_proto_map!.schemas.run;
    expect(run.args_proto).toContain("message HelloArgs");
    expect(run.result_proto).toContain("message HelloResult");
    expect(run.output_type).toBe("BOTH");
    const { response } = await fx.api.runner.CountBy({ runner_types: ["PLUGIN"] });
    expect(Number(response.total)).toBeGreaterThanOrEqual(3); // hello, throwing, hanging (+ NOOP when enabled)
  });

  it("runs a job with settings and args encoded from the served protos (DIRECT, per job and use_static)", async () => {
    for (const use_static of [false, true]) {
      const workerId = await createWorker(hello.runner.id.value, hello.encodeSettings({ greeting: "Bonjour" }), { use_static });
      for (const name of ["Ada", "Grace"]) {
        const r = await enqueue(workerId, hello.encodeArgs({ name }));
        expect(r.status).toBe("SUCCESS");
        expect(hello.decodeResult(r.output!.items)).toEqual({ message: `Bonjour, ${name}!` });
      }
    }
  });

  it("EnqueueForStream yields one HelloResult per word", async () => {
    const workerId = await createWorker(hello.runner.id.value, hello.encodeSettings({ greeting: "Hi" }), { response_type: "NO_RESULT" });
    const out = await collectSettled(fx.api.job.EnqueueForStream({ worker_id: { value: workerId }, args: hello.encodeArgs({ name: "Ada Lovelace" }) }), 20_000);
    expect(out.error, `stream error: ${out.error?.details}`).toBeNull();
    const words = out.items.filter((i) => i.item === "data").map((i) => hello.decodeResult(i.data!).message);
    expect(words).toEqual(["Hi,", "Ada", "Lovelace!"]);
    expect(out.items.at(-1)?.item).toBe("end");
  });

  it("RunnerService.Create registers a plugin module at runtime (usable at once); a taken name is ALREADY_EXISTS", async () => {
    const name = uniqueName("HelloAtRuntime");
    const definition = path.join(ROOT, "plugins/hello/hello.ts");
    const { response } = await fx.api.runner.Create({ name, description: "hello, registered at runtime", runner_type: "PLUGIN", definition });
    const created = await servedCodec(fx.api, name);
    expect(created.runner.id.value).toBe(response.id.value);
    expect(created.runner.data.runner_type).toBe("PLUGIN");
    const workerId = await createWorker(response.id.value, created.encodeSettings({ greeting: "Hola" }));
    const r = await enqueue(workerId, created.encodeArgs({ name: "mundo" }));
    expect(r.status).toBe("SUCCESS");
    expect(created.decodeResult(r.output!.items)).toEqual({ message: "Hola, mundo!" });
    const again = await fx.api.runner.Create({ name, description: "", runner_type: "PLUGIN", definition }).then(
      () => expect.fail("expected ALREADY_EXISTS"),
      (e: { code?: number }) => e,
    );
    expect(again.code).toBe(6); // ALREADY_EXISTS
  });

  it("a bad args message is refused at enqueue (args checked against the plugin's proto)", async () => {
    const workerId = await createWorker(hello.runner.id.value, hello.encodeSettings({ greeting: "Hi" }));
    const err = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: Buffer.from([0xff, 0xff, 0xff]) }).then(
      () => expect.fail("expected a rejection"),
      (e: { details?: string }) => e,
    );
    expect(err.details).toMatch(/args/);
  });

  it("a plugin that throws fails its job with the plugin's message; the server keeps serving", async () => {
    const throwing = await servedCodec(fx.api, "ThrowingPlugin");
    const workerId = await createWorker(throwing.runner.id.value, throwing.encodeSettings({}));
    const r = await enqueue(workerId, throwing.encodeArgs({ message: "the plugin said no" }));
    expect(r.status).toBe("OTHER_ERROR");
    expect(Buffer.from(r.output!.items).toString()).toBe("the plugin said no");
    const fatal = await enqueue(workerId, throwing.encodeArgs({ message: "never retry this", kind: "FATAL_ERROR" }));
    expect(fatal.status).toBe("FATAL_ERROR");
    await expectHelloStillWorks();
  });

  it("a plugin that hangs fails its job on the job's timeout; the server keeps serving", async () => {
    const hanging = await servedCodec(fx.api, "HangingPlugin");
    for (const use_static of [false, true]) {
      const workerId = await createWorker(hanging.runner.id.value, new Uint8Array(), { use_static });
      const t0 = Date.now();
      const r = await enqueue(workerId, hanging.encodeArgs({ mode: "spin" }), 1000);
      expect(Date.now() - t0).toBeLessThan(8000);
      // no retry policy: the timeout (ERROR_AND_RETRY) ends as MAX_RETRY, with the reason in the output
      expect(r.status).toBe("MAX_RETRY");
      expect(Buffer.from(r.output!.items).toString()).toMatch(/timed out/);
    }
    await expectHelloStillWorks();
  });
});
