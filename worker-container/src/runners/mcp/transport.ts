// MCP server definitions (how to reach a server) and connected clients.
// A definition is what MCP_CONFIG's `[[server]]` entries and RunnerService.Create's `definition` hold:
// TOML or JSON, `transport = "stdio" | "sse" | "streamable-http"` ("http" is accepted for the latter) with
// `command`/`args`/`envs` (stdio) or `url`/`headers` (HTTP). The runner row stores it as canonical JSON.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { parse as parseToml } from "smol-toml";

export type McpTransportDef =
  | { transport: "stdio"; command: string; args: string[]; envs: Record<string, string> }
  | { transport: "sse" | "streamable-http"; url: string; headers: Record<string, string> };

export class DefinitionError extends Error {}

const CONNECT_TIMEOUT_MS = 15_000; // jobworkerp-rs's MCP_CONNECTION_TIMEOUT_SECS default

function stringMap(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new DefinitionError(`${what} must be a table/object of strings`);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
}

/** Validate one server entry (a parsed TOML table or JSON object) into a transport definition. */
export function transportOf(entry: Record<string, unknown>): McpTransportDef {
  const raw = String(entry.transport ?? (entry.url ? "streamable-http" : "stdio")).toLowerCase();
  if (raw === "stdio") {
    if (typeof entry.command !== "string" || entry.command === "") throw new DefinitionError("a stdio MCP server needs 'command'");
    const args = entry.args ?? [];
    if (!Array.isArray(args)) throw new DefinitionError("'args' must be a list of strings");
    return { transport: "stdio", command: entry.command, args: args.map(String), envs: stringMap(entry.envs ?? entry.env, "'envs'") };
  }
  const transport = raw === "sse" ? "sse" : raw === "streamable-http" || raw === "http" || raw === "streamable_http" || raw === "streamablehttp" ? "streamable-http" : undefined;
  if (!transport) throw new DefinitionError(`unknown MCP transport '${raw}' (stdio, sse, streamable-http)`);
  if (typeof entry.url !== "string") throw new DefinitionError(`a ${transport} MCP server needs 'url'`);
  try {
    new URL(entry.url);
  } catch {
    throw new DefinitionError(`'url' is not a valid URL: ${entry.url}`);
  }
  return { transport, url: entry.url, headers: stringMap(entry.headers, "'headers'") };
}

/**
 * Parse RunnerService.Create's `definition`: JSON (an object, or `{"server":[{...}]}`) or TOML (top-level keys,
 * or one `[[server]]` table). Returns the transport and, when the text has them, its name/description.
 */
export function parseDefinition(text: string): { def: McpTransportDef; name?: string; description?: string } {
  const trimmed = text.trim();
  if (trimmed === "") throw new DefinitionError("definition is empty: give the MCP server's transport as TOML or JSON");
  let doc: Record<string, unknown>;
  try {
    doc = trimmed.startsWith("{") ? (JSON.parse(trimmed) as Record<string, unknown>) : (parseToml(trimmed) as Record<string, unknown>);
  } catch (e) {
    throw new DefinitionError(`definition is neither valid JSON nor valid TOML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new DefinitionError("definition must be an object/table");
  let entry = doc;
  if (Array.isArray(doc.server)) {
    if (doc.server.length !== 1) throw new DefinitionError(`definition must describe one server, got ${doc.server.length}`);
    entry = doc.server[0] as Record<string, unknown>;
  }
  return {
    def: transportOf(entry),
    name: typeof entry.name === "string" ? entry.name : undefined,
    description: typeof entry.description === "string" ? entry.description : undefined,
  };
}

/** The canonical JSON stored as the runner row's `definition`. */
export const definitionJson = (def: McpTransportDef) => JSON.stringify(def);

/** Where a definition points, for messages. */
export const describeTarget = (def: McpTransportDef) =>
  def.transport === "stdio" ? `'${[def.command, ...def.args].join(" ")}'` : `${def.transport} ${def.url}`;

export interface Connected {
  client: Client;
  /** Last lines the server wrote to stderr (stdio), for error messages. */
  stderrTail(): string;
  /** Set once the transport has closed (server exited, connection dropped). */
  readonly closed: boolean;
  close(): Promise<void>;
}

function makeTransport(def: McpTransportDef): { transport: Transport; stderrTail: () => string } {
  if (def.transport === "stdio") {
    const t = new StdioClientTransport({
      command: def.command,
      args: def.args,
      env: { ...getDefaultEnvironment(), ...def.envs },
      stderr: "pipe",
    });
    let tail = "";
    t.stderr?.on("data", (b: Buffer) => {
      tail = (tail + b.toString()).slice(-2000);
    });
    return { transport: t, stderrTail: () => tail.trim() };
  }
  const requestInit = { headers: def.headers };
  const url = new URL(def.url);
  const transport = def.transport === "sse" ? new SSEClientTransport(url, { requestInit }) : new StreamableHTTPClientTransport(url, { requestInit });
  return { transport, stderrTail: () => "" };
}

/** Connect and initialize (bounded by the connection timeout and `signal`). */
export async function connect(def: McpTransportDef, signal?: AbortSignal): Promise<Connected> {
  const { transport, stderrTail } = makeTransport(def);
  const client = new Client({ name: "jobworkerp-ts", version: "0.1.0" });
  let closed = false;
  client.onclose = () => {
    closed = true;
  };
  try {
    await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS, signal });
  } catch (e) {
    await client.close().catch(() => undefined);
    const tail = stderrTail();
    throw new Error(`cannot connect to MCP server ${describeTarget(def)}: ${(e as Error).message}${tail ? ` (stderr: ${tail})` : ""}`);
  }
  return {
    client,
    stderrTail,
    get closed() {
      return closed;
    },
    close: () => client.close().catch(() => undefined),
  };
}
