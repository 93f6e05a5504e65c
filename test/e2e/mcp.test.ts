// MCP_SERVER runners through gRPC against the real @modelcontextprotocol/server-everything (stdio): one from
// MCP_CONFIG at start-up, one created at runtime with RunnerService.Create (Scalable: created through one front,
// used by whichever front and worker get the calls, which load it from the store).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status, expectAlive, expectCode, uniqueName, useServer, waitUntil } from "../helpers/fixture.js";
import { servedCodec, type ServedCodec } from "../helpers/served_protos.js";

const EVERYTHING = path.resolve(import.meta.dirname, "../../node_modules/@modelcontextprotocol/server-everything/dist/index.js");
const stdioToml = (name: string, command = process.execPath, args = [EVERYTHING, "stdio"]) =>
  `[[server]]\nname = "${name}"\ndescription = "server-everything over stdio"\ntransport = "stdio"\ncommand = ${JSON.stringify(command)}\nargs = ${JSON.stringify(args)}\n`;

const CONFIGURED = uniqueName("everything");
const BROKEN = uniqueName("broken-mcp");
const configDir = fs.mkdtempSync(path.join(os.tmpdir(), "mcp-e2e-"));
const configPath = path.join(configDir, "mcp-settings.toml");
// a good server and one whose command does not exist: the process must start anyway
fs.writeFileSync(configPath, stdioToml(CONFIGURED) + "\n" + stdioToml(BROKEN, "/nonexistent/mcp-server", []));

const fx = useServer({ env: { MCP_CONFIG: configPath } });

let codec: ServedCodec;
beforeAll(async () => {
  codec = await servedCodec(fx.api, CONFIGURED);
});
afterAll(() => fs.rmSync(configDir, { recursive: true, force: true }));

async function createWorker(runnerId: string, extra: Record<string, unknown> = {}): Promise<string> {
  const { response } = await fx.api.worker.Create({
    name: uniqueName("mcp"),
    runner_id: { value: runnerId },
    response_type: "DIRECT",
    retry_policy: { type: "NONE" },
    ...extra,
  });
  return response.id.value;
}

async function call(workerId: string, using: string, args: Buffer, c: ServedCodec = codec) {
  const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, using, args }, { timeoutMs: 30_000 });
  const r = response.result!.data;
  return { status: r.status, output: r.output!.items, result: () => c.decodeResult(r.output!.items, using) };
}

describe("MCP_SERVER runners", () => {
  it("MCP_CONFIG at start-up: the server is a runner whose tools are methods with served args protos", async () => {
    const r = codec.runner;
    expect(r.data.runner_type).toBe("MCP_SERVER");
    expect(JSON.parse(r.data.definition)).toMatchObject({ transport: "stdio", command: process.execPath });
    const schemas = r.data.method_proto_map!.schemas;
    expect(Object.keys(schemas)).toEqual(expect.arrayContaining(["echo", "get-sum"]));
    expect(schemas.echo.args_proto).toMatch(/string message = 1;/);
    expect(schemas.echo.result_proto).toMatch(/message McpServerResult/);
    expect(schemas.echo.output_type).toBe("NON_STREAMING");
  });

  it("DIRECT echo and get-sum with args encoded from the served protos, with and without use_static", async () => {
    for (const useStatic of [false, true]) {
      const workerId = await createWorker(codec.runner.id.value, { use_static: useStatic });
      const echo = await call(workerId, "echo", codec.encodeArgs({ message: `hi static=${useStatic}` }, "echo"));
      expect(echo.status).toBe("SUCCESS");
      expect(echo.result()).toMatchObject({ content: [{ text: { text: `Echo: hi static=${useStatic}` } }] });
      const sum = await call(workerId, "get-sum", codec.encodeArgs({ a: 19.5, b: 22.5 }, "get-sum"));
      expect(sum.result().content[0].text.text).toMatch(/42/);
      expect(sum.result().is_error ?? false).toBe(false);
    }
  });

  it("a tool error is a result with is_error = true; an unknown tool is rejected at enqueue", async () => {
    const workerId = await createWorker(codec.runner.id.value);
    const bad = await call(workerId, "get-sum", Buffer.from(JSON.stringify({ a: 1, b: "two" })));
    expect(bad.status).toBe("SUCCESS");
    expect(bad.result()).toMatchObject({ is_error: true, content: [{ text: { text: expect.stringMatching(/expected number/) } }] });
    const err = await fx.api.job.Enqueue({ worker_id: { value: workerId }, using: "no-such-tool", args: Buffer.alloc(0) }).then(
      () => expect.fail("expected an error"),
      (e) => e,
    );
    expectCode(err, Status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/no method 'no-such-tool'/);
  });

  it("an MCP_CONFIG server that cannot start is listed, and a worker on it is refused with the reason", async () => {
    const { response } = await fx.api.runner.FindByName({ name: BROKEN });
    expect(response.data?.data.runner_type).toBe("MCP_SERVER");
    expect(Object.keys(response.data?.data.method_proto_map?.schemas ?? {})).toEqual([]);
    const err = await createWorker(response.data!.id.value).then(
      () => expect.fail("expected an error"),
      (e) => e,
    );
    expectCode(err, Status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/nonexistent\/mcp-server/);
    await expectAlive(fx);
  });

  it("RunnerService.Create at runtime, jobs on any front/worker, RefreshMcpRunner, Delete", async () => {
    const name = uniqueName("runtime-mcp");
    const created = await fx.api.runner.Create({ name, description: "created at runtime", runner_type: "MCP_SERVER", definition: stdioToml(name) });
    const runnerId = created.response.id.value;
    expect(BigInt(runnerId)).toBeGreaterThan(1_000_000n); // a snowflake
    const runtime = await servedCodec(fx.api, name);
    expect(runtime.runner.data.description).toBe("created at runtime");
    const workerId = await createWorker(runnerId);
    // several jobs: in the Scalable shape they go through both fronts and land on either worker
    for (let i = 0; i < 4; i++) {
      const r = await call(workerId, "echo", runtime.encodeArgs({ message: `runtime ${i}` }, "echo"), runtime);
      expect(r.status).toBe("SUCCESS");
      expect(r.result().content[0].text.text).toBe(`Echo: runtime ${i}`);
    }
    const refreshed = await fx.api.runner.RefreshMcpRunner({ runner_id: { value: runnerId } });
    expect(refreshed.response.updated_runners).toEqual([name]);
    expect((await call(workerId, "echo", runtime.encodeArgs({ message: "after refresh" }, "echo"), runtime)).status).toBe("SUCCESS");

    const dup = await fx.api.runner.Create({ name, runner_type: "MCP_SERVER", definition: stdioToml(name) }).then(
      () => expect.fail("expected an error"),
      (e) => e,
    );
    expectCode(dup, Status.ALREADY_EXISTS);

    expect((await fx.api.runner.Delete({ value: runnerId })).response.is_success).toBe(true);
    expect((await fx.api.runner.Find({ value: runnerId })).response.data).toBeFalsy();
    // every front forgets it (Scalable: over Redis pub/sub)
    await waitUntil(
      async () => {
        const e = await fx.api.job.Enqueue({ worker_id: { value: workerId }, using: "echo", args: Buffer.alloc(0) }, { timeoutMs: 10_000 }).then(
          () => undefined,
          (x) => x,
        );
        return e?.code === Status.FAILED_PRECONDITION ? e : undefined;
      },
      { what: "enqueue refused on a deleted runner" },
    );
  });

  it("RunnerService.Create with a bad definition: INVALID_ARGUMENT / FAILED_PRECONDITION with a clear message", async () => {
    const attempt = (definition: string) =>
      fx.api.runner.Create({ name: uniqueName("bad-mcp"), runner_type: "MCP_SERVER", definition }).then(
        () => expect.fail("expected an error"),
        (e) => e,
      );
    const syntax = await attempt("transport = [unclosed");
    expectCode(syntax, Status.INVALID_ARGUMENT);
    expect(syntax.details).toMatch(/neither valid JSON nor valid TOML/);
    const noCommand = await attempt(`{"transport": "stdio"}`);
    expectCode(noCommand, Status.INVALID_ARGUMENT);
    expect(noCommand.details).toMatch(/needs 'command'/);
    const unreachable = await attempt(`transport = "streamable-http"\nurl = "http://127.0.0.1:1/mcp"`);
    expectCode(unreachable, Status.FAILED_PRECONDITION);
    expect(unreachable.details).toMatch(/cannot connect to MCP server streamable-http http:\/\/127\.0\.0\.1:1\/mcp/);
    const missing = await attempt(stdioToml("x", "/nonexistent/mcp-server", []));
    expectCode(missing, Status.FAILED_PRECONDITION);
    expect(missing.details).toMatch(/nonexistent\/mcp-server/);
    await expectAlive(fx);
  });
});
