// MCP_ENABLED=true: a front (all-in-one or front role) also serves its workers and runners as MCP tools over
// Streamable HTTP on MCP_ADDR + MCP_PATH, calling them in-process (the same SystemFunctions the LLM runner uses).
import type { Logger } from "pino";
import type { Config } from "../cli/config.js";
import { SystemFunctions } from "../core/functions.js";
import type { System } from "../core/system.js";
import { toolOptions } from "./command.js";
import { startMcpHttp, type McpHttpServer } from "./http.js";

export async function startFrontMcp(sys: System, cfg: Config, log: Logger): Promise<McpHttpServer> {
  const http = await startMcpHttp(
    new SystemFunctions(sys, cfg.mcp.timeoutMs),
    { ...toolOptions(cfg), addr: cfg.mcp.addr, path: cfg.mcp.path, authToken: cfg.authToken },
    (err) => log.warn({ err }, "mcp http error"),
  );
  log.info({ url: http.url, port: http.port }, "mcp endpoint listening");
  return http;
}
