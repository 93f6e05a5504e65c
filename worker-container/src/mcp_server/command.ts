// `jobworkerp mcp [--stdio | --http] [-a host:port]`: this deployment's workers and runners as an MCP server.
//   -a/--address  use a running jobworkerp front's FunctionService over gRPC (what an MCP host usually wants:
//                 the stdio process it launches reaches the deployment where the workers live);
//   without it    run the system in this process (Standalone: an all-in-one on SQLITE_URL; Scalable: a front on
//                 the shared MySQL/Redis whose jobs the deployment's workers run).
// Logs go to stderr: stdout belongs to the MCP protocol in stdio mode.
import pino, { type Logger } from "pino";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { SystemFunctions } from "../core/functions.js";
import { compose } from "../cli/compose.js";
import { loadConfig, type Config } from "../cli/config.js";
import { startMcpHttp } from "./http.js";
import { RemoteFunctions } from "./remote_functions.js";
import { createToolServer, type McpToolHost, type ToolServerOptions } from "./tool_server.js";

export const MCP_USAGE = `usage: jobworkerp mcp [--stdio | --http] [-a|--address host:port]
  --stdio (default)   serve MCP over stdin/stdout (for an MCP host to launch)
  --http              serve MCP over Streamable HTTP on MCP_ADDR, path MCP_PATH
  -a, --address ADDR  use the jobworkerp front at ADDR (gRPC, e.g. 127.0.0.1:9000; AUTH_TOKEN is sent);
                      without it the system runs in this process
Tools: every worker and runner (MCP_EXCLUDE_WORKER / MCP_EXCLUDE_RUNNER, MCP_SET_NAME), calls time out after
MCP_TIMEOUT_SEC.`;

class UsageError extends Error {}

interface Args {
  transport: "stdio" | "http";
  address?: string;
}

function parseArgs(argv: string[]): Args {
  const out: Args = { transport: "stdio" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stdio") out.transport = "stdio";
    else if (a === "--http") out.transport = "http";
    else if (a === "-a" || a === "--address") {
      const v = argv[++i];
      if (!v) throw new UsageError(`${a} needs host:port`);
      out.address = v;
    } else if (a.startsWith("--address=")) out.address = a.slice("--address=".length);
    else throw new UsageError(`unknown option '${a}'`);
  }
  if (out.address !== undefined && !/^[^\s:]*:\d+$|^\[.*\]:\d+$/.test(out.address.replace(/^(dns|ipv4|ipv6):/, ""))) {
    throw new UsageError(`--address must be host:port, got '${out.address}'`);
  }
  return out;
}

/** Tool-list options from the config (MCP_SET_NAME is handed to the host: the function-set hook). */
export function toolOptions(cfg: Config): ToolServerOptions {
  return { useWorkers: !cfg.mcp.excludeWorker, useRunners: !cfg.mcp.excludeRunner, functionSetName: cfg.mcp.setName };
}

/** Resolves when the server should stop: stdin closed (stdio), or SIGINT/SIGTERM. */
function untilStopped(log: Logger, stdio: StdioServerTransport | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (why: string) => {
      log.info({ why }, "mcp server stopping");
      resolve();
    };
    process.once("SIGINT", () => done("SIGINT"));
    process.once("SIGTERM", () => done("SIGTERM"));
    if (stdio) {
      process.stdin.once("end", () => done("stdin closed"));
      process.stdin.once("close", () => done("stdin closed"));
    }
  });
}

export async function runMcpCommand(argv: string[]): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    console.error(MCP_USAGE);
    return 0;
  }
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`jobworkerp mcp: ${e.message}\n${MCP_USAGE}`);
    return 2;
  }
  // an embedded Standalone system must run jobs itself; a Scalable one is a front for the deployment's workers
  const base = loadConfig("all-in-one");
  const cfg = args.address || base.storageType === "Standalone" ? base : loadConfig("front");
  const log = pino({ level: cfg.logLevel, base: { role: "mcp" } }, pino.destination(2));

  let host: McpToolHost;
  let shutdown: () => Promise<void>;
  if (args.address) {
    const remote = new RemoteFunctions(args.address, cfg.authToken, cfg.mcp.timeoutMs);
    host = remote;
    shutdown = async () => remote.close();
  } else {
    const running = await compose(cfg, log);
    host = new SystemFunctions(running.system, cfg.mcp.timeoutMs);
    shutdown = async () => {
      await running.stopWork();
      await running.close();
    };
  }

  const opts = toolOptions(cfg);
  let stdio: StdioServerTransport | undefined;
  let closeServer: () => Promise<void>;
  if (args.transport === "stdio") {
    stdio = new StdioServerTransport();
    const server = createToolServer(host, opts);
    server.onerror = (err) => log.warn({ err }, "mcp protocol error");
    await server.connect(stdio);
    closeServer = () => server.close();
    log.info({ address: args.address ?? "(in process)" }, "mcp server on stdio");
  } else {
    const http = await startMcpHttp(host, { ...opts, addr: cfg.mcp.addr, path: cfg.mcp.path, authToken: cfg.authToken }, (err) => log.warn({ err }, "mcp http error"));
    closeServer = () => http.close();
    log.info({ url: http.url, address: args.address ?? "(in process)" }, "mcp server listening");
  }

  await untilStopped(log, stdio);
  try {
    await closeServer();
    await shutdown();
    return 0;
  } catch (err) {
    log.error({ err }, "mcp shutdown failed");
    return 1;
  }
}
