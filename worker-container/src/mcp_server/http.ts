// The Streamable HTTP MCP endpoint (MCP_ENABLED=true on a front, or `jobworkerp mcp --http`).
// Stateful sessions: each `initialize` gets its own MCP Server and transport, found again by the Mcp-Session-Id
// header, so a client's notifications/cancelled reach the call it cancels. Idle sessions are closed.
import { randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { createToolServer, type McpToolHost, type ToolServerOptions } from "./tool_server.js";

export interface McpHttpOptions extends ToolServerOptions {
  /** host:port to listen on (port 0: any free port). */
  addr: string;
  /** URL path of the endpoint, e.g. "/mcp". */
  path: string;
  /** When set, requests need `Authorization: Bearer <token>` or `jobworkerp-auth: <token>` (AUTH_TOKEN). */
  authToken?: string;
  sessionIdleMs?: number;
}

export interface McpHttpServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

interface Session {
  transport: StreamableHTTPServerTransport;
  lastSeen: number;
}

const DEFAULT_SESSION_IDLE_MS = 30 * 60_000;

function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  const port = Number(addr.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`MCP address must be host:port, got '${addr}'`);
  return { host: addr.slice(0, i).replace(/^\[(.*)\]$/, "$1") || "0.0.0.0", port };
}

function jsonRpcError(res: ServerResponse, status: number, message: string, code = -32000): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}

function authorized(req: IncomingMessage, token: string): boolean {
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
  const given = bearer ?? (req.headers["jobworkerp-auth"] as string | undefined);
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startMcpHttp(host: McpToolHost, opts: McpHttpOptions, onError: (err: unknown) => void = () => undefined): Promise<McpHttpServer> {
  const { host: bindHost, port } = splitAddr(opts.addr);
  const sessions = new Map<string, Session>();
  const idleMs = opts.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path !== opts.path) return jsonRpcError(res, 404, `not found: the MCP endpoint is ${opts.path}`);
    if (opts.authToken && !authorized(req, opts.authToken)) return jsonRpcError(res, 401, "missing or invalid auth token");

    const sid = req.headers["mcp-session-id"];
    if (typeof sid === "string") {
      const s = sessions.get(sid);
      if (!s) return jsonRpcError(res, 404, "session not found (expired or closed): initialize again", -32001);
      s.lastSeen = Date.now();
      return s.transport.handleRequest(req, res);
    }
    if (req.method !== "POST") return jsonRpcError(res, 400, "no Mcp-Session-Id header: start with an initialize request");

    // a new session; the transport itself rejects anything but initialize here
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, { transport, lastSeen: Date.now() }),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    const server = createToolServer(host, opts);
    server.onerror = onError;
    await server.connect(transport);
    await transport.handleRequest(req, res);
    if (!transport.sessionId) await server.close();
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((err) => {
      onError(err);
      if (!res.headersSent) jsonRpcError(res, 500, "internal error", -32603);
      else res.end();
    });
  });
  const sweeper = setInterval(() => {
    const cutoff = Date.now() - idleMs;
    for (const [id, s] of sessions) {
      if (s.lastSeen < cutoff) {
        sessions.delete(id);
        void s.transport.close().catch(onError);
      }
    }
  }, Math.min(idleMs, 60_000));
  sweeper.unref();

  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(port, bindHost, () => {
      http.off("error", reject);
      resolve();
    });
  });
  const actual = (http.address() as AddressInfo).port;
  return {
    port: actual,
    url: `http://${bindHost.includes(":") ? `[${bindHost}]` : bindHost}:${actual}${opts.path}`,
    async close() {
      clearInterval(sweeper);
      const open = [...sessions.values()];
      sessions.clear();
      await Promise.all(open.map((s) => s.transport.close().catch(() => undefined)));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
