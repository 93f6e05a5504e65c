// MCP servers becoming runner rows: RunnerService.Create / RefreshMcpRunner and the MCP_CONFIG file read at start.
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { parse as parseToml } from "smol-toml";
import { alreadyExists, AppError, failedPrecondition, invalid } from "../../core/errors.js";
import type { SnowflakeGenerator } from "../../core/ids.js";
import type { RunnerRow, Store } from "../../core/ports.js";
import type { RunnerRegistry } from "../../core/runners.js";
import { checkName } from "../../core/validate.js";
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { listTools, mcpRunnerDefinition, transportOfRow } from "./index.js";
import { DefinitionError, definitionJson, parseDefinition, transportOf } from "./transport.js";

export interface McpDeps {
  store: Store;
  ids: SnowflakeGenerator;
  runners: RunnerRegistry;
}

/**
 * RunnerService.Create for MCP_SERVER: parse the definition (TOML or JSON), check the name is free, connect and
 * list the tools (so a bad definition fails here, not in every job), then store the row.
 */
export async function createMcpRunner(deps: McpDeps, req: { name: string; description: string; definition: string }): Promise<bigint> {
  let parsed: ReturnType<typeof parseDefinition>;
  try {
    parsed = parseDefinition(req.definition);
  } catch (e) {
    throw invalid(`MCP_SERVER definition: ${(e as Error).message}`);
  }
  const name = req.name || parsed.name || "";
  checkName(name, "name");
  if (await deps.store.findRunnerByName(name)) throw alreadyExists(`a runner named '${name}' already exists`);
  let tools;
  try {
    tools = await listTools(parsed.def);
  } catch (e) {
    throw failedPrecondition(`MCP server '${name}' cannot be used: ${(e as Error).message}`);
  }
  const row: RunnerRow = {
    id: deps.ids.next(),
    name,
    description: req.description || parsed.description || "",
    runnerType: RunnerType.MCP_SERVER,
    definition: definitionJson(parsed.def),
    createdAt: Date.now(),
  };
  await deps.store.createRunner(row);
  deps.runners.prime(row, mcpRunnerDefinition(row, parsed.def, tools));
  return row.id;
}

/** RunnerService.RefreshMcpRunner: list the tools again; every process drops its old copy. */
export async function refreshMcpRunners(
  deps: McpDeps,
  only?: bigint,
): Promise<{ updatedRunners: string[]; failures: { runnerName: string; errorMessage: string }[] }> {
  const rows = only !== undefined ? [await deps.store.findRunner(only)].filter((r): r is RunnerRow => !!r) : await deps.store.findRunners({ runnerTypes: [RunnerType.MCP_SERVER], limit: 10_000 });
  const out = { updatedRunners: [] as string[], failures: [] as { runnerName: string; errorMessage: string }[] };
  for (const row of rows) {
    try {
      const def = transportOfRow(row);
      const tools = await listTools(def);
      await deps.runners.changed(row.id);
      deps.runners.prime(row, mcpRunnerDefinition(row, def, tools));
      out.updatedRunners.push(row.name);
    } catch (e) {
      out.failures.push({ runnerName: row.name, errorMessage: (e as Error).message });
    }
  }
  return out;
}

/**
 * MCP_CONFIG at start-up: every `[[server]]` becomes (or updates) the runner row of its name. Nothing here stops
 * the process: bad entries and unreachable servers are logged (the tools are listed in the background, and
 * again when the runner is first used).
 */
export async function registerConfiguredServers(deps: McpDeps, path: string, explicit: boolean, log: Pick<Logger, "info" | "warn" | "error">): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      if (explicit) log.warn({ path }, "MCP_CONFIG file not found; no MCP server runners configured");
      return;
    }
    log.error({ err: e, path }, "cannot read MCP_CONFIG");
    return;
  }
  let servers: unknown[];
  try {
    const doc = parseToml(text) as Record<string, unknown>;
    servers = Array.isArray(doc.server) ? doc.server : [];
  } catch (e) {
    log.error({ path, err: (e as Error).message }, "MCP_CONFIG is not valid TOML; no MCP server runners configured");
    return;
  }
  for (const raw of servers) {
    const entry = (raw ?? {}) as Record<string, unknown>;
    const name = typeof entry.name === "string" ? entry.name : "";
    try {
      if (!name) throw new DefinitionError("a [[server]] entry needs 'name'");
      const row = await upsertServerRow(deps, name, typeof entry.description === "string" ? entry.description : "", definitionJson(transportOf(entry)));
      deps.runners.load(row).then(
        (d) => log.info({ runner: name, id: row.id.toString(), tools: Object.keys(d.methods).length }, "MCP server runner ready"),
        (e: Error) => log.warn({ runner: name, err: e.message }, "MCP server runner registered, but its tools could not be listed"),
      );
    } catch (e) {
      log.error({ runner: name || "(unnamed)", path, err: (e as Error).message }, "MCP_CONFIG entry skipped");
    }
  }
}

/** Create the row, or update its description/definition when they changed (all processes race here at start). */
async function upsertServerRow(deps: McpDeps, name: string, description: string, definition: string): Promise<RunnerRow> {
  for (let attempt = 0; ; attempt++) {
    const existing = await deps.store.findRunnerByName(name);
    if (existing) {
      if (existing.runnerType !== RunnerType.MCP_SERVER) throw new DefinitionError(`runner '${name}' exists and is not an MCP_SERVER runner`);
      if (existing.definition === definition && existing.description === description) return existing;
      await deps.store.updateRunner(existing.id, { description, definition });
      await deps.runners.changed(existing.id);
      return { ...existing, description, definition };
    }
    const row: RunnerRow = { id: deps.ids.next(), name, description, runnerType: RunnerType.MCP_SERVER, definition, createdAt: Date.now() };
    try {
      await deps.store.createRunner(row);
      return row;
    } catch (e) {
      // another process created it a moment ago: read it again
      if (!(e instanceof AppError && e.kind === "ALREADY_EXISTS") || attempt > 0) throw e;
    }
  }
}
