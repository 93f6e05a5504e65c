// Plugin modules becoming runner rows (type PLUGIN, a snowflake id, definition = the module's absolute path):
// PLUGINS_RUNNER_DIR at start-up, and RunnerService.Create(PLUGIN). A row is found again by its name, so a
// plugin keeps its runner id (and its workers) across restarts. Any process that meets a PLUGIN row it has not
// loaded (another process created it) loads it through `pluginRunnerLoader`.
import { AppError, alreadyExists, failedPrecondition } from "../../core/errors.js";
import type { SnowflakeGenerator } from "../../core/ids.js";
import type { RunnerRow, Store } from "../../core/ports.js";
import type { RunnerRegistry } from "../../core/runners.js";
import { checkName } from "../../core/validate.js";
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import type { RunnerDefinition } from "../runner.js";
import { discoverPlugins, loadPluginRunner, openPlugin, type PluginLoadOptions } from "./index.js";

export interface PluginDeps {
  store: Pick<Store, "findRunnerByName" | "createRunner" | "updateRunner">;
  ids: Pick<SnowflakeGenerator, "next">;
  runners: Pick<RunnerRegistry, "prime" | "changed">;
}

/** The loader of PLUGIN rows for RunnerRegistry.setLoader(RunnerType.PLUGIN, …). */
export const pluginRunnerLoader =
  (opts: PluginLoadOptions = {}) =>
  (row: RunnerRow): Promise<RunnerDefinition> =>
    loadPluginRunner(row.definition, row.id, opts);

/** The plugin's row: its existing PLUGIN row by name (its path updated if the module moved), or a new one. */
async function upsertPluginRow(deps: PluginDeps, name: string, description: string, file: string): Promise<RunnerRow> {
  for (let attempt = 0; ; attempt++) {
    const existing = await deps.store.findRunnerByName(name);
    if (existing) {
      if (existing.runnerType !== RunnerType.PLUGIN) throw new Error(`its name '${name}' is taken by a runner of another type (id ${existing.id})`);
      if (existing.definition === file && existing.description === description) return existing;
      await deps.store.updateRunner(existing.id, { description, definition: file });
      await deps.runners.changed(existing.id);
      return { ...existing, description, definition: file };
    }
    const row: RunnerRow = { id: deps.ids.next(), name, description, runnerType: RunnerType.PLUGIN, definition: file, createdAt: Date.now() };
    try {
      await deps.store.createRunner(row);
      return row;
    } catch (e) {
      // another process of the deployment registered the same plugin a moment ago: use its row
      if (!(e instanceof AppError && e.kind === "ALREADY_EXISTS") || attempt > 0) throw e;
    }
  }
}

/**
 * PLUGINS_RUNNER_DIR at start-up: every plugin module becomes (or finds again) its runner row and its loaded
 * definition is primed in the registry. A plugin that fails to load is reported through `onError` and skipped;
 * nothing here stops the server. Returns the registered runners.
 */
export async function registerPlugins(
  deps: PluginDeps,
  dir: string,
  onError: (file: string, err: Error) => void,
  opts: PluginLoadOptions = {},
): Promise<RunnerRow[]> {
  let files: string[];
  try {
    files = await discoverPlugins(dir);
  } catch (e) {
    onError(dir, new Error(`PLUGINS_RUNNER_DIR ${dir}: ${(e as Error).message}`));
    return [];
  }
  const rows: RunnerRow[] = [];
  for (const file of files) {
    try {
      const plugin = await openPlugin(file, opts);
      try {
        if (rows.some((r) => r.name === plugin.meta.name)) throw new Error(`another plugin in ${dir} is already named '${plugin.meta.name}'`);
        const row = await upsertPluginRow(deps, plugin.meta.name, plugin.meta.description, plugin.file);
        deps.runners.prime(row, plugin.definition(row.id));
        rows.push(row);
      } catch (e) {
        await plugin.closeIdle();
        throw e;
      }
    } catch (e) {
      onError(file, e instanceof Error ? e : new Error(String(e)));
    }
  }
  return rows;
}

/**
 * RunnerService.Create for PLUGIN: `definition` is the path of a plugin module on the worker hosts. The module
 * is loaded first (a bad path or plugin fails here with FAILED_PRECONDITION, not in every job); the runner's
 * name is `name`, or the plugin's own name when empty.
 */
export async function createPluginRunner(
  deps: PluginDeps,
  req: { name: string; description: string; definition: string },
  opts: PluginLoadOptions = {},
): Promise<bigint> {
  let plugin: Awaited<ReturnType<typeof openPlugin>>;
  try {
    plugin = await openPlugin(req.definition, opts);
  } catch (e) {
    throw failedPrecondition(`PLUGIN definition '${req.definition}' cannot be used: ${(e as Error).message}`);
  }
  try {
    const name = req.name || plugin.meta.name;
    checkName(name, "name");
    if (await deps.store.findRunnerByName(name)) throw alreadyExists(`a runner named '${name}' already exists`);
    const row: RunnerRow = {
      id: deps.ids.next(),
      name,
      description: req.description || plugin.meta.description,
      runnerType: RunnerType.PLUGIN,
      definition: plugin.file,
      createdAt: Date.now(),
    };
    await deps.store.createRunner(row);
    deps.runners.prime(row, { ...plugin.definition(row.id), name });
    return row.id;
  } catch (e) {
    await plugin.closeIdle();
    throw e;
  }
}
