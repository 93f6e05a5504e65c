// PLUGIN runners (RunnerType PLUGIN = 0): JavaScript / TypeScript ES modules implementing the plugin contract
// (./contract.ts), loaded from PLUGINS_RUNNER_DIR. jobworkerp-rs loads native .so/.dylib plugins through an FFI
// ABI; jobworkerp-ts cannot, so its plugins are ES modules, each instance isolated in a worker thread.
//
// The module is imported inside a thread (never in the worker's own thread), so a plugin that throws, hangs or
// exits while loading or running costs a thread, not the process. Threads whose instance closed cleanly wait,
// warm, for the plugin's next instance: a per-job (non-static) worker does not pay a thread start per job.
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import type { MethodDefinition, RunnerDefinition } from "../runner.js";
import { PluginRunnerInstance, type ThreadSource } from "./plugin_instance.js";
import { PluginThread } from "./plugin_thread.js";
import type { PluginMeta } from "./protocol.js";
import { compileProto } from "./proto_schema.js";

export { livePluginThreads } from "./plugin_thread.js";
export type { Plugin, PluginInstance, PluginMethod, PluginRunContext } from "./contract.js";

export interface PluginLoadOptions {
  /** Import + describe (PLUGIN_LOAD_TIMEOUT_SECS; default 10 s). */
  loadTimeoutMs?: number;
  /** The plugin's create(settings), and close() (PLUGIN_INSTANTIATE_TIMEOUT_SECS; default 5 s). */
  createTimeoutMs?: number;
}

const MODULE_EXTENSIONS = [".js", ".mjs", ".ts", ".mts"];
/** Warm threads kept per plugin (a channel's default concurrency), and how long an unused one stays. */
const MAX_IDLE_THREADS = 8;
const IDLE_THREAD_MS = 60_000;

const OUTPUT_TYPES: Record<string, StreamingOutputType> = {
  NON_STREAMING: StreamingOutputType.NON_STREAMING,
  STREAMING: StreamingOutputType.STREAMING,
  BOTH: StreamingOutputType.BOTH,
};

const isModuleFile = (name: string) => MODULE_EXTENSIONS.includes(path.extname(name)) && !/\.d\.m?ts$/.test(name);

/**
 * Plugin module paths in `dir` (absolute, sorted): each module file directly in it, and for each
 * subdirectory its `index.*` or else its `<subdirectory name>.*` (e.g. `hello/hello.ts`).
 */
export async function discoverPlugins(dir: string): Promise<string[]> {
  const root = path.resolve(dir);
  const found: string[] = [];
  for (const e of (await readdir(root, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(root, e.name);
    // follow symlinks (a plugin linked into the directory)
    const kind = e.isSymbolicLink() ? await stat(full).catch(() => undefined) : e;
    if (kind?.isFile() && isModuleFile(e.name)) found.push(full);
    else if (kind?.isDirectory()) {
      const files = (await readdir(full)).filter(isModuleFile);
      const entry = ["index", e.name].flatMap((base) => MODULE_EXTENSIONS.map((x) => base + x)).find((f) => files.includes(f));
      if (entry) found.push(path.join(full, entry));
    }
  }
  return found;
}

/** Threads that have imported one plugin module. */
class PluginModule implements ThreadSource {
  private idle: PluginThread[] = [];
  private idleTimers = new Map<PluginThread, NodeJS.Timeout>();
  name = "";

  constructor(
    readonly file: string,
    readonly loadTimeoutMs: number,
    readonly createTimeoutMs: number,
  ) {}

  /** A thread with the module imported; rejects (and ends the thread) when it fails to load in time. */
  async spawn(): Promise<[PluginThread, PluginMeta]> {
    const t = new PluginThread(this.file);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`plugin ${this.file} did not load within ${this.loadTimeoutMs} ms`)), this.loadTimeoutMs);
    });
    try {
      return [t, await Promise.race([t.loaded, timeout])];
    } catch (e) {
      await t.terminate();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async take(): Promise<PluginThread> {
    for (let t = this.idle.pop(); t; t = this.idle.pop()) {
      clearTimeout(this.idleTimers.get(t));
      this.idleTimers.delete(t);
      if (t.alive) return t;
    }
    return (await this.spawn())[0];
  }

  give(t: PluginThread): void {
    if (!t.alive) return;
    if (this.idle.length >= MAX_IDLE_THREADS) {
      void t.terminate();
      return;
    }
    this.idle.push(t);
    const timer = setTimeout(() => {
      this.idle = this.idle.filter((x) => x !== t);
      this.idleTimers.delete(t);
      void t.terminate();
    }, IDLE_THREAD_MS);
    timer.unref();
    this.idleTimers.set(t, timer);
  }

  /** Ends the warm threads (in-flight instances keep theirs until they close). */
  async closeIdle(): Promise<void> {
    const threads = this.idle.splice(0);
    for (const t of threads) clearTimeout(this.idleTimers.get(t));
    this.idleTimers.clear();
    await Promise.all(threads.map((t) => t.terminate()));
  }
}

export interface OpenedPlugin {
  /** The plugin's name (its runner's name) and description. */
  meta: PluginMeta;
  file: string;
  /** The runner definition under runner id `id`. */
  definition(id: bigint): RunnerDefinition;
  /** Ends the plugin's warm threads. */
  closeIdle(): Promise<void>;
}

/** Builds the method table, compiling every proto text; throws a clear Error for a malformed plugin. */
function methodsOf(meta: PluginMeta): Record<string, MethodDefinition> {
  const methods: Record<string, MethodDefinition> = {};
  for (const [name, m] of Object.entries(meta.methods)) {
    const what = `plugin ${meta.name}, method ${name}`;
    if (typeof m.argsProto !== "string" || typeof m.resultProto !== "string") throw new Error(`${what}: argsProto and resultProto must be .proto texts`);
    const outputType = OUTPUT_TYPES[m.outputType];
    if (outputType === undefined) throw new Error(`${what}: outputType must be NON_STREAMING, STREAMING or BOTH, got '${m.outputType}'`);
    methods[name] = {
      argsProto: m.argsProto,
      resultProto: m.resultProto,
      argsSchema: compileProto(m.argsProto, `${what} argsProto`).main,
      resultSchema: compileProto(m.resultProto, `${what} resultProto`).main,
      description: m.description,
      outputType,
    };
  }
  return methods;
}

/** Imports a plugin module in a worker thread and checks its metadata and protos (the thread stays warm). */
export async function openPlugin(file: string, opts: PluginLoadOptions = {}): Promise<OpenedPlugin> {
  const mod = new PluginModule(path.resolve(file), opts.loadTimeoutMs ?? 10_000, opts.createTimeoutMs ?? 5_000);
  if (!(await stat(mod.file).catch(() => undefined))?.isFile()) throw new Error(`plugin ${mod.file}: no such file`);
  const [thread, meta] = await mod.spawn();
  try {
    mod.name = meta.name;
    const methods = methodsOf(meta);
    const settingsSchema = meta.settingsProto.trim() === "" ? undefined : compileProto(meta.settingsProto, `plugin ${meta.name} settingsProto`).main;
    mod.give(thread);
    return {
      meta,
      file: mod.file,
      closeIdle: () => mod.closeIdle(),
      definition: (id) => ({
        id,
        name: meta.name,
        description: meta.description,
        runnerType: RunnerType.PLUGIN,
        settingsProto: meta.settingsProto,
        settingsSchema,
        methods,
        create: (settings) => PluginRunnerInstance.create(mod, settings),
      }),
    };
  } catch (e) {
    await thread.terminate();
    throw e;
  }
}

/**
 * The RunnerDefinition of the plugin module at `file`, as runner `id`: what RunnerService.Create(PLUGIN,
 * definition = file path) should register. Rejects with a clear message when the module does not load,
 * does not export a plugin, or declares protos that do not compile.
 */
export async function loadPluginRunner(file: string, id: bigint, opts: PluginLoadOptions = {}): Promise<RunnerDefinition> {
  return (await openPlugin(file, opts)).definition(id);
}
