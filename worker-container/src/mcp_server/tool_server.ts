// jobworkerp as an MCP server: the workers and runners a ToolHost offers (core/functions.ts, in-process or over a
// remote front) become MCP tools. A call runs one DIRECT job; its decoded result comes back as JSON text, a failed
// job as `isError: true` with its message. While the job runs, progress notifications tick (when the client asked
// for them with a progressToken), and a cancelled request cancels the job.
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { AppError } from "../core/errors.js";
import type { ToolCallOutcome, ToolListOptions, ToolSpec } from "../runners/llm/tools.js";

export interface ToolServerOptions extends ToolListOptions {
  /** How often a running call reports progress. */
  progressIntervalMs?: number;
}

const DEFAULT_PROGRESS_INTERVAL_MS = 500;

/**
 * The tools: SystemFunctions in-process, or RemoteFunctions over a front's FunctionService. `scope` limits calls
 * to the tools `list(scope)` offers. Arguments that do not fit reject with AppError INVALID_ARGUMENT.
 */
export interface McpToolHost {
  list(opts: ToolListOptions): Promise<ToolSpec[]>;
  call(name: string, argsJson: string, signal: AbortSignal, onStarted?: (jobId: bigint) => void, scope?: ToolListOptions): Promise<ToolCallOutcome>;
}

const asTool = (t: ToolSpec) => ({ name: t.name, description: t.description, inputSchema: t.parameters as { type: "object" } });

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A new MCP Server over `host` (one per connection: stdio process or HTTP session). */
export function createToolServer(host: McpToolHost, opts: ToolServerOptions, version = "0.1.0"): Server {
  const server = new Server({ name: "jobworkerp", version }, { capabilities: { tools: {} } });
  const listOpts: ToolListOptions = { useWorkers: opts.useWorkers, useRunners: opts.useRunners, functionSetName: opts.functionSetName };
  const interval = opts.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;

  const listTools = async () => {
    try {
      return await host.list(listOpts);
    } catch (e) {
      throw new McpError(ErrorCode.InternalError, `cannot list tools: ${(e as Error).message}`);
    }
  };

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: (await listTools()).map(asTool) }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const { name, arguments: args } = req.params;
    // only listed tools may be called (MCP_SET_NAME / exclusions narrow the list, the host would call any)
    const tools = await listTools();
    if (!tools.some((t) => t.name === name)) {
      throw new McpError(ErrorCode.InvalidParams, `unknown tool '${name}': not a worker or runner offered by this server (see tools/list)`);
    }

    const token = req.params._meta?.progressToken;
    let step = 0;
    let jobId: bigint | undefined;
    const t0 = Date.now();
    const report = (message: string) => {
      if (token === undefined || extra.signal.aborted) return;
      // progress must grow with each notification: count them, and say in words what is happening
      void extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: ++step, message } }).catch(() => undefined);
    };
    const ticker = setInterval(() => {
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      report(jobId === undefined ? `waiting for the job of '${name}' (${secs} s)` : `job ${jobId} running (${secs} s)`);
    }, interval);
    try {
      const out = await host.call(name, JSON.stringify(args ?? {}), extra.signal, (id) => {
        jobId = id;
        report(`job ${id} enqueued`);
      }, listOpts);
      const result: CallToolResult = { content: [{ type: "text", text: out.result }] };
      const parsed: unknown = JSON.parse(out.result);
      if (isPlainObject(parsed)) result.structuredContent = parsed;
      if (out.jobId !== undefined) result._meta = { jobId: out.jobId.toString() };
      return result;
    } catch (e) {
      const message = (e as Error).message;
      // the caller's arguments did not fit the tool: a protocol error, not a failed run
      if (e instanceof AppError && e.kind === "INVALID_ARGUMENT") throw new McpError(ErrorCode.InvalidParams, `tool '${name}': ${message}`);
      return { content: [{ type: "text", text: message }], isError: true };
    } finally {
      clearInterval(ticker);
    }
  });
  return server;
}
