// MCP_SERVER runners against the real @modelcontextprotocol/server-everything (stdio, streamable HTTP, SSE).
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunnerType } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { McpServerResultSchema, type McpServerResult } from "../../worker-container/src/gen/jobworkerp/runner/mcp_server_result_pb.js";
import type { RunnerRow } from "../../worker-container/src/core/ports.js";
import { mcpRunnerLoader } from "../../worker-container/src/runners/mcp/index.js";
import { parseDefinition } from "../../worker-container/src/runners/mcp/transport.js";
import type { RunContext, RunnerDefinition } from "../../worker-container/src/runners/runner.js";
import { expectRunnerError, rejection } from "../helpers/runner_errors.js";
import { freePort } from "../helpers/server.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const EVERYTHING = path.join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mcp-runner-"));
// Counts server starts: appends its pid to $MCP_SPAWN_LOG, then becomes the server (same pid).
const WRAPPER = path.join(tmp, "everything.sh");
fs.writeFileSync(WRAPPER, `#!/bin/sh\necho $$ >> "$MCP_SPAWN_LOG"\nexec "${process.execPath}" "${EVERYTHING}" stdio\n`, { mode: 0o755 });

let seq = 0;
function stdioRow(spawnLog = path.join(tmp, `spawns-${++seq}.log`)): { row: RunnerRow; spawnLog: string } {
  const definition = JSON.stringify({ transport: "stdio", command: WRAPPER, args: [], envs: { MCP_SPAWN_LOG: spawnLog } });
  return { row: { id: 9_000_000_000n + BigInt(seq), name: `everything-${seq}`, description: "", runnerType: RunnerType.MCP_SERVER, definition, createdAt: 0 }, spawnLog };
}
const spawns = (log: string) => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n").filter(Boolean) : []);

const ctx = (using: string, signal: AbortSignal = new AbortController().signal): RunContext => ({ signal, using, jobId: 1n, metadata: {} });

/** Encode args with the proto text the runner serves for a tool (as a client would). */
function encodeArgs(def: RunnerDefinition, tool: string, obj: Record<string, unknown>): Uint8Array {
  const text = def.methods[tool].argsProto;
  const parsed = protobuf.parse(text, { keepCase: true });
  parsed.root.resolveAll();
  const t = (parsed.root.lookup(parsed.package!) as protobuf.Namespace).nestedArray.find((n): n is protobuf.Type => n instanceof protobuf.Type)!;
  return t.encode(t.fromObject(obj)).finish();
}
const decode = (b: Uint8Array): McpServerResult => fromBinary(McpServerResultSchema, b);
const texts = (r: McpServerResult) => r.content.map((c) => (c.rawContent.case === "text" ? c.rawContent.value.text : `<${c.rawContent.case}>`));
const utf8 = (s: string) => new TextEncoder().encode(s);

let stdio: RunnerDefinition;

beforeAll(async () => {
  stdio = await mcpRunnerLoader(stdioRow().row);
}, 30_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("MCP_SERVER runner (stdio)", () => {
  it("every tool becomes a method with a served args proto and the McpServerResult result proto", () => {
    expect(stdio.runnerType).toBe(RunnerType.MCP_SERVER);
    expect(Object.keys(stdio.methods)).toEqual(expect.arrayContaining(["echo", "get-sum", "get-tiny-image", "trigger-long-running-operation"]));
    const echo = stdio.methods.echo;
    expect(echo.argsProto).toMatch(/message EchoArgs \{/);
    expect(echo.argsProto).toMatch(/\/\/ Message to echo\n\s+string message = 1;/);
    expect(stdio.methods["get-sum"].argsProto).toMatch(/double a = 1;[\s\S]*double b = 2;/);
    expect(stdio.methods["get-resource-links"].argsProto).toMatch(/optional double count = 1;/);
    expect(echo.resultProto).toMatch(/message McpServerResult \{/);
    expect(echo.description).toMatch(/echo/i);
    // the served text compiles on its own (no imports) for every tool
    for (const m of Object.values(stdio.methods)) protobuf.parse(m.argsProto).root.resolveAll();
  });

  it("echo: args encoded from the served proto, text content back", async () => {
    const inst = await stdio.create(new Uint8Array());
    try {
      const r = decode(await inst.run(encodeArgs(stdio, "echo", { message: "hello mcp" }), ctx("echo")));
      expect(r.isError).toBe(false);
      expect(texts(r)).toEqual(["Echo: hello mcp"]);
    } finally {
      await inst.close?.();
    }
  });

  it("get-sum with numbers (zero included: required fields are always sent); args as JSON text are accepted too", async () => {
    const inst = await stdio.create(new Uint8Array());
    try {
      const r = decode(await inst.run(encodeArgs(stdio, "get-sum", { a: 2.5, b: 0 }), ctx("get-sum")));
      expect(r.isError).toBe(false);
      expect(texts(r)[0]).toMatch(/2\.5/);
      const j = decode(await inst.run(utf8('{"a": 40, "b": 2}'), ctx("get-sum")));
      expect(texts(j)[0]).toMatch(/42/);
      const img = decode(await inst.run(new Uint8Array(), ctx("get-tiny-image")));
      const image = img.content.find((c) => c.rawContent.case === "image");
      expect(image?.rawContent.case === "image" && image.rawContent.value.mimeType).toBe("image/png");
    } finally {
      await inst.close?.();
    }
  });

  it("a tool error comes back as is_error = true with the server's message; an unknown tool is a FATAL_ERROR", async () => {
    const inst = await stdio.create(new Uint8Array());
    try {
      const r = decode(await inst.run(utf8('{"a": 1, "b": "not a number"}'), ctx("get-sum")));
      expect(r.isError).toBe(true);
      expect(texts(r)[0]).toMatch(/expected number/);
      await expectRunnerError(inst.run(new Uint8Array(), ctx("no-such-tool")), "FATAL_ERROR", /no tool 'no-such-tool'/);
    } finally {
      await inst.close?.();
    }
  });

  it("use_static: one instance serves jobs in a row on one server process; per-job instances start one each", async () => {
    const { row, spawnLog } = stdioRow();
    const def = await mcpRunnerLoader(row);
    expect(spawns(spawnLog)).toHaveLength(1); // listing the tools
    const staticInst = await def.create(new Uint8Array());
    for (const m of ["one", "two", "three"]) {
      expect(texts(decode(await staticInst.run(encodeArgs(def, "echo", { message: m }), ctx("echo"))))).toEqual([`Echo: ${m}`]);
    }
    expect(spawns(spawnLog)).toHaveLength(2);
    await staticInst.close?.();
    for (const m of ["four", "five"]) {
      const inst = await def.create(new Uint8Array());
      await inst.run(encodeArgs(def, "echo", { message: m }), ctx("echo"));
      await inst.close?.();
    }
    expect(spawns(spawnLog)).toHaveLength(4);
  });

  it("a crashed server process fails only the job it was running; the static instance starts a new one", async () => {
    const { row, spawnLog } = stdioRow();
    const def = await mcpRunnerLoader(row);
    const inst = await def.create(new Uint8Array());
    try {
      await inst.run(encodeArgs(def, "echo", { message: "warm" }), ctx("echo"));
      const pid = Number(spawns(spawnLog).at(-1));
      const running = inst.run(encodeArgs(def, "trigger-long-running-operation", { duration: 10, steps: 2 }), ctx("trigger-long-running-operation"));
      await new Promise((r) => setTimeout(r, 300));
      process.kill(pid, "SIGKILL");
      await expectRunnerError(running, "ERROR_AND_RETRY", /server went away|closed/i);
      expect(texts(decode(await inst.run(encodeArgs(def, "echo", { message: "again" }), ctx("echo"))))).toEqual(["Echo: again"]);
      expect(spawns(spawnLog)).toHaveLength(3);
    } finally {
      await inst.close?.();
    }
  });

  it("the job's abort signal (timeout / cancel) stops a long tool call promptly", async () => {
    const inst = await stdio.create(new Uint8Array());
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(new Error("job timed out")), 300);
    try {
      await rejection(inst.run(encodeArgs(stdio, "trigger-long-running-operation", { duration: 20, steps: 2 }), ctx("trigger-long-running-operation", ac.signal)));
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      await inst.close?.();
    }
  });

  it("a server that cannot start: loading fails with the command and the reason; a job fails with ERROR_AND_RETRY", async () => {
    const row: RunnerRow = {
      id: 1n, name: "broken", description: "", runnerType: RunnerType.MCP_SERVER, createdAt: 0,
      definition: JSON.stringify({ transport: "stdio", command: "/nonexistent/mcp-server", args: [] }),
    };
    const e = (await rejection(mcpRunnerLoader(row))) as Error;
    expect(e.message).toMatch(/\/nonexistent\/mcp-server/);
    const def = (await import("../../worker-container/src/runners/mcp/index.js")).mcpRunnerDefinition(row, parseDefinition(row.definition).def, [
      { name: "echo", inputSchema: { type: "object", properties: { message: { type: "string" } } } },
    ]);
    const inst = await def.create(new Uint8Array());
    await expectRunnerError(inst.run(new Uint8Array(), ctx("echo")), "ERROR_AND_RETRY", /cannot connect to MCP server/);
  });
});

describe("MCP definitions", () => {
  it("TOML and JSON, stdio and HTTP ('http' means streamable HTTP); clear errors otherwise", () => {
    expect(parseDefinition(`[[server]]\nname = "x"\ndescription = "d"\ntransport = "stdio"\ncommand = "npx"\nargs = ["-y", "srv"]\nenvs = { A = "1" }`)).toEqual({
      def: { transport: "stdio", command: "npx", args: ["-y", "srv"], envs: { A: "1" } },
      name: "x",
      description: "d",
    });
    expect(parseDefinition(`transport = "http"\nurl = "http://h:1/mcp"`).def).toEqual({ transport: "streamable-http", url: "http://h:1/mcp", headers: {} });
    expect(parseDefinition(`{"transport":"sse","url":"http://h/sse","headers":{"authorization":"Bearer t"}}`).def).toMatchObject({ transport: "sse" });
    expect(() => parseDefinition("")).toThrow(/empty/);
    expect(() => parseDefinition("not = [valid")).toThrow(/neither valid JSON nor valid TOML/);
    expect(() => parseDefinition(`transport = "stdio"`)).toThrow(/needs 'command'/);
    expect(() => parseDefinition(`transport = "carrier-pigeon"\nurl = "x"`)).toThrow(/unknown MCP transport/);
    expect(() => parseDefinition(`transport = "sse"`)).toThrow(/needs 'url'/);
  });
});

describe.each([
  ["streamable-http", "streamableHttp", "/mcp"],
  ["sse", "sse", "/sse"],
])("MCP_SERVER runner (%s)", (transport, mode, urlPath) => {
  let child: ChildProcess;
  let def: RunnerDefinition;
  beforeAll(async () => {
    const port = await freePort();
    child = spawn(process.execPath, [EVERYTHING, mode], { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "ignore", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on("data", (b: Buffer) => /listening|running on port/i.test(b.toString()) && resolve());
      child.once("exit", (c) => reject(new Error(`server exited (${c})`)));
    });
    const row: RunnerRow = {
      id: 2n, name: `everything-${mode}`, description: "", runnerType: RunnerType.MCP_SERVER, createdAt: 0,
      definition: JSON.stringify({ transport, url: `http://127.0.0.1:${port}${urlPath}` }),
    };
    def = await mcpRunnerLoader(row);
  }, 30_000);
  afterAll(() => {
    child?.kill("SIGKILL");
  });

  it("lists the tools and calls echo / get-sum, per job and on a static instance", async () => {
    expect(Object.keys(def.methods)).toContain("echo");
    const perJob = await def.create(new Uint8Array());
    expect(texts(decode(await perJob.run(encodeArgs(def, "echo", { message: "over http" }), ctx("echo"))))).toEqual(["Echo: over http"]);
    await perJob.close?.();
    const inst = await def.create(new Uint8Array());
    try {
      for (const b of [1, 2]) {
        const r = decode(await inst.run(encodeArgs(def, "get-sum", { a: 10, b }), ctx("get-sum")));
        expect(texts(r)[0]).toMatch(new RegExp(String(10 + b)));
      }
    } finally {
      await inst.close?.();
    }
  });
});
