// PLUGIN runners: real plugin modules (plugins/hello, plugins/noop, test/fixtures/plugins) loaded in real worker
// threads. Each failure case is followed by a successful run to show the process (and the instance) goes on.
import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import protobuf from "protobufjs";
import { afterAll, describe, expect, it } from "vitest";
import { openSqliteStore } from "../../worker-container/src/adapters/sqlite/index.js";
import { SnowflakeGenerator } from "../../worker-container/src/core/ids.js";
import { RunnerInstances } from "../../worker-container/src/core/runner_instances.js";
import { RunnerRegistry } from "../../worker-container/src/core/runners.js";
import { RunnerType } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../worker-container/src/gen/jobworkerp/data/runner_pb.js";
import { WorkerSchema } from "../../worker-container/src/gen/jobworkerp/data/worker_pb.js";
import {
  discoverPlugins,
  livePluginThreads,
  loadPluginRunner,
} from "../../worker-container/src/runners/plugin/index.js";
import { pluginRunnerLoader, registerPlugins } from "../../worker-container/src/runners/plugin/register.js";
import { ABORT_GRACE_MS } from "../../worker-container/src/runners/plugin/plugin_instance.js";
import type { RunContext, RunnerDefinition, RunnerInstance } from "../../worker-container/src/runners/runner.js";
import { waitUntil } from "../helpers/fixture.js";
import { expectRunnerError } from "../helpers/runner_errors.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const HELLO = path.join(ROOT, "plugins/hello/hello.ts");
const FIXTURES = path.join(ROOT, "test/fixtures/plugins");
const fixture = (name: string) => path.join(FIXTURES, `${name}.ts`);

/** Encodes with the plugin's own proto text (as a client would, independent of the server's compiled schema). */
function codec(text: string) {
  const parsed = protobuf.parse(text, { keepCase: true });
  const ns = parsed.root.lookup(parsed.package!) as protobuf.Namespace;
  const t = ns.nestedArray.find((n): n is protobuf.Type => n instanceof protobuf.Type)!;
  return {
    encode: (o: Record<string, unknown>) => new Uint8Array(t.encode(t.fromObject(o)).finish()),
    decode: (b: Uint8Array) => t.toObject(t.decode(b)) as Record<string, any>,
  };
}
const args = (def: RunnerDefinition, o: Record<string, unknown>) => codec(def.methods.run.argsProto).encode(o);
const result = (def: RunnerDefinition, b: Uint8Array) => codec(def.methods.run.resultProto).decode(b);

function ctx(signal = new AbortController().signal): RunContext {
  return { signal, using: "run", jobId: 1n, metadata: {} };
}
const abortAfter = (ms: number) => AbortSignal.timeout(ms);

const defs = new Map<string, Promise<RunnerDefinition>>();
const load = (file: string) => {
  if (!defs.has(file)) defs.set(file, loadPluginRunner(file, 1000n));
  return defs.get(file)!;
};
const opened: RunnerInstance[] = [];
async function instance(def: RunnerDefinition, settings = new Uint8Array()): Promise<RunnerInstance> {
  const i = await def.create(settings);
  opened.push(i);
  return i;
}
afterAll(async () => {
  await Promise.all(opened.map((i) => i.close?.().catch(() => undefined)));
});

describe("PLUGIN runner loading", () => {
  it("discovers module files and folder entries (index.* or <folder>.*)", async () => {
    expect(await discoverPlugins(path.join(ROOT, "plugins"))).toEqual([HELLO, path.join(ROOT, "plugins/noop/noop.ts")]);
    expect(await discoverPlugins(FIXTURES)).toEqual(["crashing", "hanging", "throwing"].map(fixture));
  });

  it("loads the hello plugin as a PLUGIN runner definition with its protos and compiled schemas", async () => {
    const def = await load(HELLO);
    expect(def).toMatchObject({ id: 1000n, name: "HelloPlugin", runnerType: RunnerType.PLUGIN });
    expect(def.settingsProto).toContain("message HelloSettings");
    expect(def.settingsSchema?.typeName).toBe("jobworkerp.plugins.hello.HelloSettings");
    expect(def.methods.run.outputType).toBe(StreamingOutputType.BOTH);
    expect(def.methods.run.argsProto).toContain("message HelloArgs");
    expect(def.methods.run.argsSchema.typeName).toBe("jobworkerp.plugins.hello.HelloArgs");
    expect(def.methods.run.resultSchema.typeName).toBe("jobworkerp.plugins.hello.HelloResult");
  });

  it("rejects modules that are not plugins, with a clear message, without harming the process", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "plugins-bad-"));
    const write = (name: string, text: string) => {
      writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    await expect(loadPluginRunner(write("nodefault.mjs", "export const x = 1;\n"), 1n)).rejects.toThrow(/no default export/);
    await expect(loadPluginRunner(write("throws.mjs", "throw new Error('import went wrong');\n"), 1n)).rejects.toThrow(/import went wrong/);
    await expect(
      loadPluginRunner(
        write("badproto.mjs", `export default { name: "BadProto", description: "", settingsProto: "", create: async () => ({}),
          methods: { run: { argsProto: "syntax = 'proto3'; message A { Missing m = 1; }", resultProto: "", outputType: "BOTH" } } };\n`),
        1n,
      ),
    ).rejects.toThrow(/BadProto, method run argsProto: invalid proto text/);
    await expect(
      loadPluginRunner(
        write("badoutput.mjs", `export default { name: "BadOut", description: "", settingsProto: "", create: async () => ({}),
          methods: { run: { argsProto: "syntax = 'proto3'; message A {}", resultProto: "syntax = 'proto3'; message B {}", outputType: "SOMETIMES" } } };\n`),
        1n,
      ),
    ).rejects.toThrow(/outputType must be NON_STREAMING, STREAMING or BOTH/);
    const before = livePluginThreads();
    await expect(loadPluginRunner(write("hangs.mjs", "await new Promise(() => setInterval(() => {}, 1000));\n"), 1n, { loadTimeoutMs: 300 })).rejects.toThrow(
      /did not load within 300 ms/,
    );
    expect(livePluginThreads()).toBe(before); // the loading thread was terminated
    await expect(loadPluginRunner(path.join(dir, "missing.ts"), 1n)).rejects.toThrow(/no such file/);
  });
});

describe("PLUGIN runner runs", () => {
  it("runs hello with its settings and streams the message word by word", async () => {
    const def = await load(HELLO);
    const i = await instance(def, codec(def.settingsProto).encode({ greeting: "Hi" }));
    expect(result(def, await i.run(args(def, { name: "Ada" }), ctx()))).toEqual({ message: "Hi, Ada!" });
    const words: string[] = [];
    for await (const chunk of i.runStream!(args(def, { name: "Ada Lovelace" }), ctx())) words.push(result(def, chunk).message);
    expect(words).toEqual(["Hi,", "Ada", "Lovelace!"]);
  });

  it("a per-job instance's thread goes back warm to the plugin and serves the next instance", async () => {
    const def = await load(HELLO);
    const first = await def.create(new Uint8Array());
    await first.run(args(def, { name: "a" }), ctx());
    await first.close!();
    const threads = livePluginThreads();
    for (let n = 0; n < 3; n++) {
      const i = await def.create(new Uint8Array());
      expect(result(def, await i.run(args(def, { name: `n${n}` }), ctx()))).toEqual({ message: `Hello, n${n}!` });
      await i.close!();
    }
    expect(livePluginThreads()).toBe(threads);
  });

  it("a run that throws fails with the plugin's message (OTHER_ERROR, or the kind it declares)", async () => {
    const def = await load(fixture("throwing"));
    const i = await instance(def);
    await expectRunnerError(i.run(args(def, { message: "no luck" }), ctx()), "OTHER_ERROR", /^no luck$/);
    await expectRunnerError(i.run(args(def, { message: "try later", kind: "ERROR_AND_RETRY" }), ctx()), "ERROR_AND_RETRY", /try later/);
    const stream = async () => {
      for await (const _ of i.runStream!(args(def, { message: "mid-stream" }), ctx())) void _;
    };
    await expectRunnerError(stream(), "OTHER_ERROR", /mid-stream/);
    // settings the plugin refuses fail at create time, as FATAL_ERROR
    await expectRunnerError(def.create(codec(def.settingsProto).encode({ refuse: true })), "FATAL_ERROR", /settings refused/);
  });

  for (const mode of ["await", "spin"]) {
    it(`a run that never returns (${mode}) fails on timeout and its thread is terminated`, async () => {
      const def = await load(fixture("hanging"));
      const i = await instance(def);
      const threads = livePluginThreads();
      const t0 = Date.now();
      await expectRunnerError(i.run(args(def, { mode }), ctx(abortAfter(300))), "ERROR_AND_RETRY");
      expect(Date.now() - t0).toBeLessThan(2000); // the job is not held by the plugin
      await waitUntil(() => livePluginThreads() === threads - 1, { timeoutMs: ABORT_GRACE_MS + 5000, what: "the hung thread to end" });
      // the same instance (a static pool slot) goes on in a new thread
      const aborted = new AbortController();
      const p = i.run(args(def, { mode: "await" }), ctx(aborted.signal));
      await waitUntil(() => livePluginThreads() === threads, { what: "a replacement thread" });
      aborted.abort(new Error("cancelled"));
      await expectRunnerError(p, "ERROR_AND_RETRY", /cancelled/);
    });
  }

  it("a stream that never ends fails on timeout and its thread is terminated", async () => {
    const def = await load(fixture("hanging"));
    const i = await instance(def);
    const threads = livePluginThreads();
    const chunks: Uint8Array[] = [];
    const stream = async () => {
      for await (const c of i.runStream!(args(def, { mode: "spin" }), ctx(abortAfter(300)))) chunks.push(c);
    };
    await expectRunnerError(stream(), "ERROR_AND_RETRY");
    expect(chunks).toHaveLength(1);
    await waitUntil(() => livePluginThreads() === threads - 1, { timeoutMs: ABORT_GRACE_MS + 5000, what: "the hung thread to end" });
  });

  for (const [mode, message] of [
    ["exit", /plugin thread exited \(code 7\)/],
    ["uncaught", /plugin thread failed: plugin blew up/],
  ] as const) {
    it(`a thread that dies (${mode}) fails only its job; the instance runs again in a new thread`, async () => {
      const def = await load(fixture("crashing"));
      const i = await instance(def);
      await expectRunnerError(i.run(args(def, { mode }), ctx()), "OTHER_ERROR", message);
      expect(result(def, await i.run(args(def, { mode: "fine" }), ctx()))).toEqual({ survived: "yes" });
    });
  }

  it("static workers reuse one instance and one thread; a hung one is replaced", async () => {
    const def = await load(fixture("hanging"));
    const hello = await load(HELLO);
    const pools = new RunnerInstances();
    const worker = (id: bigint) => create(WorkerSchema, { id: { value: id }, data: { useStatic: true, runnerSettings: new Uint8Array() } });
    // hello: 3 jobs on a pool of 1 → the same instance every time, no new thread
    const first = await pools.acquire(worker(1n), hello, 1);
    await first.instance.run(args(hello, { name: "x" }), ctx());
    await first.release();
    const threads = livePluginThreads();
    for (let n = 0; n < 3; n++) {
      const b = await pools.acquire(worker(1n), hello, 1);
      expect(b.instance).toBe(first.instance);
      expect(result(hello, await b.instance.run(args(hello, { name: "y" }), ctx()))).toEqual({ message: "Hello, y!" });
      await b.release();
    }
    expect(livePluginThreads()).toBe(threads);
    // hanging: the timed-out instance is released as broken (as the dispatcher does) and the pool builds a new one
    const hung = await pools.acquire(worker(2n), def, 1);
    const signal = abortAfter(200);
    await expectRunnerError(hung.instance.run(args(def, { mode: "spin" }), ctx(signal)), "ERROR_AND_RETRY");
    await hung.release(signal.aborted);
    const next = await pools.acquire(worker(2n), def, 1);
    expect(next.instance).not.toBe(hung.instance);
    await next.release();
    await pools.closeAll();
    await waitUntil(() => livePluginThreads() <= threads + 1, { timeoutMs: ABORT_GRACE_MS + 5000, what: "pool threads to end" });
  });

  it("the noop plugin returns its args", async () => {
    const def = await loadPluginRunner(path.join(ROOT, "plugins/noop/noop.ts"), 2n);
    expect(def.settingsProto).toBe("");
    const i = await instance(def);
    const bytes = args(def, { payload: Buffer.from("abc") });
    expect(Buffer.from(result(def, await i.run(bytes, ctx())).payload).toString()).toBe("abc");
  });
});

describe("PLUGIN runner registration", () => {
  it("PLUGINS_RUNNER_DIR: each plugin gets a PLUGIN row, found again by name after a restart; a bad one is skipped", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "plugins-dir-"));
    writeFileSync(path.join(dir, "broken.mjs"), "export default { name: 42 };\n");
    symlinkSync(path.join(ROOT, "plugins/noop"), path.join(dir, "noop"));
    const store = await openSqliteStore(path.join(dir, "db.sqlite3"));
    await store.migrate([]);
    const start = async () => {
      const runners = new RunnerRegistry([]);
      const errors: string[] = [];
      const rows = await registerPlugins({ store, ids: new SnowflakeGenerator(1n), runners }, dir, (file, e) => errors.push(`${path.basename(file)}: ${e.message}`));
      return { runners, rows, errors };
    };
    try {
      const first = await start();
      expect(first.errors).toEqual([expect.stringMatching(/^broken.mjs: .*plugin.name must be a non-empty string/)]);
      expect(first.rows.map((r) => [r.name, r.runnerType, r.definition])).toEqual([["NoopPlugin", RunnerType.PLUGIN, path.join(dir, "noop/noop.ts")]]);
      expect(first.runners.get(first.rows[0].id)?.name).toBe("NoopPlugin");
      const second = await start();
      expect(second.rows[0].id).toBe(first.rows[0].id);
      expect((await store.findRunnerByName("NoopPlugin"))?.id).toBe(first.rows[0].id);
      // another process (no start-up registration) loads the row through the PLUGIN loader
      const other = new RunnerRegistry([]);
      other.setLoader(RunnerType.PLUGIN, pluginRunnerLoader());
      other.attach(store, { publishChanged: async () => {}, onChanged: () => () => {} } as never);
      expect((await other.find(first.rows[0].id))?.methods.run.outputType).toBe(StreamingOutputType.NON_STREAMING);
    } finally {
      await store.close();
    }
  });
});
