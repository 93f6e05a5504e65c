// MCP server mode, driven by the real MCP SDK client: workers and runners as tools over stdio
// (`jobworkerp mcp --stdio -a <front>`, spawned as an MCP host would) and over Streamable HTTP (a front started
// with MCP_ENABLED=true). Each tool call is a DIRECT job; results, failures, bad calls, progress and cancellation.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { ErrorCode, McpError, type CallToolResult, type Progress } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, decodeCommandResult, shArgs } from "../helpers/client.js";
import { createCommandWorker, expectAlive, uniqueName, useServer, waitUntil } from "../helpers/fixture.js";
import { baseEnv } from "../helpers/proc.js";
import { REPO_ROOT } from "../helpers/protos.js";

const ENTRY = path.join(REPO_ROOT, "bin", "jobworkerp.mjs");

// port 0: every front of a Scalable cluster gets its own; the test reads the one a front logged
const fx = useServer({ env: { MCP_ENABLED: "true", MCP_ADDR: "127.0.0.1:0" } });

const ECHO = uniqueName("mcp-echo");
const SHELL = uniqueName("mcp-shell");

beforeAll(async () => {
  await createCommandWorker(fx.api, { name: ECHO, description: "echoes its arguments", response_type: "DIRECT" });
  await createCommandWorker(fx.api, { name: SHELL, description: "runs a command", response_type: "DIRECT" });
});

function httpUrl(): URL {
  const port = /"port":(\d+)[^\n]*"msg":"mcp endpoint listening"|"msg":"mcp endpoint listening"[^\n]*"port":(\d+)/.exec(fx.server.logs());
  if (!port) throw new Error(`no MCP endpoint in the server's logs:\n${fx.server.logs()}`);
  return new URL(`http://127.0.0.1:${port[1] ?? port[2]}/mcp`);
}

const SHAPES: Array<{ name: string; transport: () => Transport }> = [
  {
    name: "stdio (mcp --stdio --address)",
    transport: () =>
      new StdioClientTransport({
        command: process.execPath,
        args: [ENTRY, "mcp", "--stdio", "--address", fx.server.address],
        env: { ...baseEnv(), LOG_LEVEL: "warn" },
        cwd: REPO_ROOT,
        stderr: "pipe",
      }),
  },
  { name: "Streamable HTTP (MCP_ENABLED front)", transport: () => new StreamableHTTPClientTransport(httpUrl()) },
];

const textOf = (r: CallToolResult) => (r.content[0] as { type: "text"; text: string }).text;

describe.each(SHAPES)("MCP server over $name", (shape) => {
  let client: Client;
  beforeAll(async () => {
    client = new Client({ name: "e2e", version: "1.0.0" });
    await client.connect(shape.transport());
  }, 60_000);
  afterAll(async () => {
    await client?.close();
  });

  const call = (name: string, args: Record<string, unknown>, opts: Parameters<Client["callTool"]>[2] = {}) =>
    client.callTool({ name, arguments: args }, undefined, { timeout: 60_000, ...opts }) as Promise<CallToolResult>;

  it("lists the workers and the runners as tools with JSON Schemas from their args protos", async () => {
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    for (const w of [ECHO, SHELL]) {
      const t = byName.get(w);
      expect(t, `tool ${w}`).toBeDefined();
      expect(t!.inputSchema).toMatchObject({ type: "object", properties: { command: { type: "string" }, args: { type: "array", items: { type: "string" } } } });
    }
    expect(byName.get(ECHO)!.description).toBe("echoes its arguments");
    // a runner: arguments (and settings, if it has any) per call
    expect(byName.has("COMMAND")).toBe(true);
    expect(byName.has("HTTP_REQUEST")).toBe(true);
  });

  it("a call runs the worker's job and returns its decoded result, the same as the job's through gRPC", async () => {
    const r = await call(ECHO, { command: "echo", args: ["hello", "mcp"] });
    expect(r.isError ?? false).toBe(false);
    const out = JSON.parse(textOf(r));
    expect(out).toMatchObject({ exit_code: 0, stdout: "hello mcp\n" });
    expect(r.structuredContent).toMatchObject({ stdout: "hello mcp\n" });

    const { response } = await fx.api.job.Enqueue({ worker_name: ECHO, args: shArgs("echo hello mcp") }, { timeoutMs: 30_000 });
    expect(decodeCommandResult(response.result!.data.output!.items).stdout).toBe(out.stdout);

    // a runner as a tool (a temporary worker runs it; COMMAND has no settings, so its arguments are the args)
    const viaRunner = await call("COMMAND", { command: "echo", args: ["runner"] });
    expect(viaRunner.isError ?? false, textOf(viaRunner)).toBe(false);
    expect(JSON.parse(textOf(viaRunner)).stdout).toBe("runner\n");
  });

  it("a failing job is a tool result with isError and the job's message", async () => {
    const r = await call(SHELL, { command: "/nonexistent/mcp-e2e-command" });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/nonexistent\/mcp-e2e-command/);
    const nonzero = await call(SHELL, { command: "sh", args: ["-c", "echo broken >&2; exit 3"], treat_nonzero_as_error: true });
    expect(nonzero.isError).toBe(true);
    expect(textOf(nonzero)).toMatch(/broken|exit/i);
  });

  it("an unknown tool or bad arguments are MCP errors (InvalidParams) that name the problem", async () => {
    const unknown = await call("no-such-tool-anywhere", {}).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(McpError);
    expect((unknown as McpError).code).toBe(ErrorCode.InvalidParams);
    expect((unknown as McpError).message).toMatch(/unknown tool 'no-such-tool-anywhere'/);

    const bad = await call(ECHO, { command: 42, args: "not-a-list" }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(McpError);
    expect((bad as McpError).code).toBe(ErrorCode.InvalidParams);
    expect((bad as McpError).message).toMatch(/invalid (arguments|args_json) .*CommandArgs.command/);

    const unknownField = await call(ECHO, { commandd: "echo" }).catch((e: unknown) => e);
    expect(unknownField).toBeInstanceOf(McpError);
    expect((unknownField as McpError).message).toMatch(/commandd/);
    // still serving
    expect((await call(ECHO, { command: "echo", args: ["ok"] })).isError ?? false).toBe(false);
  });

  it("a job of about a second reports progress while it runs", async () => {
    const progress: Progress[] = [];
    const r = await call(SHELL, { command: "sh", args: ["-c", "sleep 1.2; echo done"] }, { onprogress: (p) => progress.push(p) });
    expect(JSON.parse(textOf(r)).stdout).toBe("done\n");
    expect(progress.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < progress.length; i++) expect(progress[i].progress).toBeGreaterThan(progress[i - 1].progress);
    expect(progress.some((p) => /job|waiting/.test(p.message ?? ""))).toBe(true);
  });

  it("a cancelled call cancels its job", async () => {
    // a worker of its own, so "no job left" means this call's job
    const name = uniqueName("mcp-cancel");
    const workerId = await createCommandWorker(fx.api, { name, response_type: "DIRECT" });
    const jobsOfWorker = async () => (await collect(fx.api.jobStatus.FindByCondition({ worker_id: workerId }))).length;
    const ac = new AbortController();
    const pending = call(name, { command: "sleep", args: ["30"] }, { signal: ac.signal });
    await waitUntil(async () => (await jobsOfWorker()) > 0, { timeoutMs: 15_000, what: "the job to be enqueued" });
    ac.abort("test cancels");
    await expect(pending).rejects.toThrow();
    await waitUntil(async () => (await jobsOfWorker()) === 0, { timeoutMs: 10_000, what: "the cancelled job to be gone" });
    // the server keeps serving
    expect((await call(ECHO, { command: "echo", args: ["after"] })).isError ?? false).toBe(false);
    await expectAlive(fx);
  });
});

describe("jobworkerp mcp command line", () => {
  it("an unknown option or a bad --address exits 2 with the usage, writing nothing on stdout", () => {
    for (const argv of [["--bogus"], ["--stdio", "--address", "not an address"]]) {
      const r = spawnSync(process.execPath, [ENTRY, "mcp", ...argv], { cwd: REPO_ROOT, env: baseEnv(), encoding: "utf8", timeout: 30_000 });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/usage: jobworkerp mcp/);
      expect(r.stdout).toBe("");
    }
  });
});
