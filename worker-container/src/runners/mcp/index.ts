// MCP_SERVER runners (type 7): each configured MCP server is a runner row; each of its tools is a method
// (`using` = tool name) whose args proto is generated from the tool's JSON input schema (args_proto.ts) and
// whose result is McpServerResult. These runners are not built in: the RunnerRegistry loads one from its row
// (mcpRunnerLoader), listing the server's tools once and caching the definition until it is refreshed.
//
// A tool that reports an error (`isError: true`) is a successful job whose McpServerResult has is_error = true,
// as jobworkerp-rs returns it; failures of the server itself (cannot start, connection lost, protocol error)
// fail the job.
//
// use_static keeps one connected client (for stdio, one server process) per pool slot, reconnecting if the
// server died; otherwise every job connects and closes its own client.
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { MAX_TIMER_MS } from "../../core/async.js";
import type { RunnerRow } from "../../core/ports.js";
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import { McpServerResultSchema } from "../../gen/jobworkerp/runner/mcp_server_result_pb.js";
import { protoText } from "../proto_text.js";
import { RunnerError, type MethodDefinition, type RunContext, type RunnerDefinition, type RunnerInstance } from "../runner.js";
import { toolArgs, type ToolArgs } from "./args_proto.js";
import { encodeToolResult } from "./result.js";
import { connect, DefinitionError, describeTarget, parseDefinition, type Connected, type McpTransportDef } from "./transport.js";

const TOOLS_LOAD_TIMEOUT_MS = 10_000; // jobworkerp-rs's MCP_TOOLS_LOAD_TIMEOUT_SECS default
const RESULT_PROTO = "jobworkerp/runner/mcp_server_result.proto";

/** Connect, list every tool (following pagination) and close. */
export async function listTools(def: McpTransportDef, signal?: AbortSignal): Promise<Tool[]> {
  const conn = await connect(def, signal);
  try {
    const tools: Tool[] = [];
    let cursor: string | undefined;
    do {
      const page = await conn.client.listTools(cursor ? { cursor } : undefined, { timeout: TOOLS_LOAD_TIMEOUT_MS, signal });
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor);
    return tools;
  } catch (e) {
    throw new Error(`MCP server ${describeTarget(def)} did not list its tools: ${(e as Error).message}`);
  } finally {
    await conn.close();
  }
}

/** Parse a runner row's stored definition (canonical JSON, or TOML written by hand). */
export function transportOfRow(row: RunnerRow): McpTransportDef {
  try {
    return parseDefinition(row.definition).def;
  } catch (e) {
    throw new DefinitionError(`runner ${row.name}: bad MCP server definition: ${(e as Error).message}`);
  }
}

/** The runner definition of an MCP server row, from its listed tools. */
export function mcpRunnerDefinition(row: RunnerRow, def: McpTransportDef, tools: Tool[]): RunnerDefinition {
  const resultProto = protoText(RESULT_PROTO);
  const argsByTool = new Map<string, ToolArgs>();
  const methods: Record<string, MethodDefinition> = {};
  for (const tool of tools) {
    let args: ToolArgs;
    let argsProto: string;
    try {
      args = toolArgs(row.name, tool.name, tool.inputSchema);
      argsProto = args.protoText;
    } catch {
      // a schema we cannot express: args are given as JSON text (empty args_proto, as jobworkerp-rs allows)
      args = toolArgs(row.name, tool.name, {});
      argsProto = "";
    }
    argsByTool.set(tool.name, args);
    methods[tool.name] = {
      argsProto,
      resultProto,
      argsSchema: args.schema,
      resultSchema: McpServerResultSchema,
      description: tool.description ?? tool.title,
      outputType: StreamingOutputType.NON_STREAMING,
      acceptsJsonArgs: true,
    };
  }
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    runnerType: RunnerType.MCP_SERVER,
    settingsProto: "",
    methods,
    create: async () => new McpInstance(row.name, def, argsByTool),
  };
}

/** RunnerRegistry loader for MCP_SERVER rows. */
export async function mcpRunnerLoader(row: RunnerRow): Promise<RunnerDefinition> {
  const def = transportOfRow(row);
  return mcpRunnerDefinition(row, def, await listTools(def));
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Args given as UTF-8 JSON object text instead of the generated message (jobworkerp's empty-args_proto
 * convention). Only text starting with '{' counts: a proto3 message never starts with that byte (field 15,
 * wire type 3 is a group).
 */
export function jsonArguments(args: Uint8Array): Record<string, unknown> | undefined {
  if (args.length === 0 || args[0] !== 0x7b) return undefined;
  try {
    const v = JSON.parse(utf8.decode(args)) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

class McpInstance implements RunnerInstance {
  private conn?: Promise<Connected>;

  constructor(
    private readonly serverName: string,
    private readonly def: McpTransportDef,
    private readonly tools: Map<string, ToolArgs>,
  ) {}

  /** The connection, made on first use and again after the server went away. */
  private async connection(signal: AbortSignal): Promise<Connected> {
    if (this.conn) {
      const c = await this.conn.catch(() => undefined);
      if (c && !c.closed) return c;
      this.conn = undefined;
    }
    const p = connect(this.def, signal);
    this.conn = p;
    try {
      return await p;
    } catch (e) {
      this.conn = undefined;
      throw new RunnerError("ERROR_AND_RETRY", `MCP server ${this.serverName}: ${(e as Error).message}`);
    }
  }

  async run(args: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
    const tool = this.tools.get(ctx.using);
    if (!tool) throw new RunnerError("FATAL_ERROR", `MCP server ${this.serverName} has no tool '${ctx.using}' (tools: ${[...this.tools.keys()].join(", ")})`);
    let argumentsJson: Record<string, unknown>;
    try {
      argumentsJson = jsonArguments(args) ?? tool.toArguments(args);
    } catch (e) {
      throw new RunnerError("FATAL_ERROR", `args of tool '${ctx.using}' do not decode: ${(e as Error).message}`);
    }
    const conn = await this.connection(ctx.signal);
    try {
      // the job's own timeout bounds the call (through ctx.signal), not the SDK's 60 s default
      const result = await conn.client.callTool({ name: ctx.using, arguments: argumentsJson }, undefined, {
        signal: ctx.signal,
        timeout: MAX_TIMER_MS,
      });
      return encodeToolResult(result);
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      const tail = conn.stderrTail();
      const msg = `MCP server ${this.serverName}, tool '${ctx.using}': ${(e as Error).message}${tail ? ` (stderr: ${tail})` : ""}`;
      if (conn.closed) {
        this.conn = undefined;
        throw new RunnerError("ERROR_AND_RETRY", `${msg} (the server went away)`);
      }
      throw new RunnerError(e instanceof McpError ? "OTHER_ERROR" : "ERROR_AND_RETRY", msg);
    }
  }

  async close(): Promise<void> {
    const c = await this.conn?.catch(() => undefined);
    this.conn = undefined;
    await c?.close();
  }
}
