// The runner catalogue: built-in runner definitions by id, dynamic runners (rows of the runner table such as
// MCP servers, turned into definitions by a loader per RunnerType and cached), and their wire form (Runner
// messages with proto texts).
//
// Dynamic runners in several processes: any process that does not know a runner id reads its row from the
// store and loads it. A change (RunnerService.Delete / RefreshMcpRunner, a changed MCP_CONFIG entry) is
// announced with `changed(id)`, which travels over the ResultBus's definition-changed signal and makes every
// process drop its copy.
import { create } from "@bufbuild/protobuf";
import type { RunnerType } from "../gen/jobworkerp/data/common_pb.js";
import {
  MethodProtoMapSchema,
  MethodSchemaSchema,
  RunnerSchema,
  StreamingOutputType,
  type Runner,
} from "../gen/jobworkerp/data/runner_pb.js";
import type { MethodDefinition, RunnerDefinition } from "../runners/runner.js";
import { invalid } from "./errors.js";
import type { ResultBus, RunnerRow, Store } from "./ports.js";

export const DEFAULT_METHOD = "run";

/** Turns a runner row of one RunnerType into a definition (e.g. connects to an MCP server and lists its tools). */
export type RunnerLoader = (row: RunnerRow) => Promise<RunnerDefinition>;

/** How long a failed load is remembered before the next lookup tries again. */
const FAILED_LOAD_RETRY_MS = 5_000;

interface Loaded {
  /** The row's definition text the entry was loaded from (a different text means a stale entry). */
  definition: string;
  promise: Promise<RunnerDefinition>;
  /** Resolved value, for synchronous reads. */
  value?: RunnerDefinition;
  failedAt?: number;
}

export class RunnerRegistry {
  private byId = new Map<bigint, RunnerDefinition>();
  private loaders = new Map<RunnerType, RunnerLoader>();
  private loaded = new Map<bigint, Loaded>();
  private store?: Pick<Store, "findRunner">;
  private bus?: Pick<ResultBus, "publishChanged">;

  constructor(definitions: RunnerDefinition[], loaders: Partial<Record<RunnerType, RunnerLoader>> = {}) {
    for (const d of definitions) this.byId.set(d.id, d);
    for (const [type, loader] of Object.entries(loaders)) if (loader) this.loaders.set(Number(type) as RunnerType, loader);
  }

  /** Register the loader of a dynamic RunnerType (e.g. MCP_SERVER, PLUGIN). */
  setLoader(type: RunnerType, loader: RunnerLoader): void {
    this.loaders.set(type, loader);
  }

  hasLoader(type: RunnerType): boolean {
    return this.loaders.has(type);
  }

  /** Connect to the backends: rows of unknown ids come from `store`, change signals travel over `bus`. */
  attach(store: Pick<Store, "findRunner">, bus: Pick<ResultBus, "publishChanged" | "onChanged">): void {
    this.store = store;
    this.bus = bus;
    bus.onChanged((kind, id) => kind === "runner" && this.forget(id));
  }

  /** A built-in runner, or a dynamic one already loaded in this process (synchronous). */
  get(id: bigint): RunnerDefinition | undefined {
    return this.byId.get(id) ?? this.loaded.get(id)?.value;
  }

  isBuiltin(id: bigint): boolean {
    return this.byId.has(id);
  }

  /**
   * The definition of a runner id: built in, cached, or loaded from its row. Undefined when no such row (or no
   * loader for its type); throws when loading fails (e.g. the MCP server cannot be reached).
   */
  async find(id: bigint): Promise<RunnerDefinition | undefined> {
    const builtin = this.byId.get(id);
    if (builtin) return builtin;
    const hit = this.loaded.get(id);
    if (hit?.value) return hit.value;
    if (hit && !this.expired(hit)) return hit.promise;
    const row = await this.store?.findRunner(id);
    if (!row || !this.loaders.has(row.runnerType)) return undefined;
    return this.load(row);
  }

  /** The definition of a dynamic runner row (cached by id while the row's definition text is unchanged). */
  load(row: RunnerRow): Promise<RunnerDefinition> {
    const builtin = this.byId.get(row.id);
    if (builtin) return Promise.resolve(builtin);
    const hit = this.loaded.get(row.id);
    if (hit && hit.definition === row.definition && !this.expired(hit)) return hit.promise;
    const loader = this.loaders.get(row.runnerType);
    if (!loader) return Promise.reject(new Error(`runner ${row.name} (${row.id}) has a type this server cannot load`));
    return this.remember(row, loader(row));
  }

  /** Cache a definition made elsewhere (e.g. RunnerService.Create has just listed the tools). */
  prime(row: RunnerRow, def: RunnerDefinition): void {
    this.remember(row, Promise.resolve(def));
  }

  private remember(row: RunnerRow, promise: Promise<RunnerDefinition>): Promise<RunnerDefinition> {
    const entry: Loaded = { definition: row.definition, promise };
    this.loaded.set(row.id, entry);
    promise.then(
      (d) => void (entry.value = d),
      () => void (entry.failedAt = Date.now()),
    );
    return promise;
  }

  private expired(e: Loaded): boolean {
    return e.failedAt !== undefined && Date.now() - e.failedAt > FAILED_LOAD_RETRY_MS;
  }

  private forgetListeners = new Set<(id: bigint) => void>();

  /** Called when a dynamic runner is dropped here (static pools built from it close their instances). */
  onForget(listener: (id: bigint) => void): void {
    this.forgetListeners.add(listener);
  }

  /** Drop this process's copy of a dynamic runner. */
  forget(id: bigint): void {
    this.loaded.delete(id);
    for (const l of this.forgetListeners) l(id);
  }

  /** A dynamic runner changed or was deleted: every process drops its copy. */
  async changed(id: bigint): Promise<void> {
    this.forget(id);
    await this.bus?.publishChanged("runner", id);
  }

  /** Rows to seed into the store's runner table. */
  builtinRows(createdAt: number): RunnerRow[] {
    return [...this.byId.values()].map((d) => ({
      id: d.id,
      name: d.name,
      description: d.description,
      runnerType: d.runnerType,
      definition: `builtin${d.id}`,
      createdAt,
    }));
  }

  /**
   * The wire form of a row, loading a dynamic runner first. A dynamic runner that cannot be loaded is still
   * listed, with no methods (its row is there; its server is not reachable right now).
   */
  async describe(row: RunnerRow): Promise<Runner> {
    if (!this.byId.has(row.id) && this.loaders.has(row.runnerType)) {
      return this.toMessage(row, await this.load(row).catch(() => undefined));
    }
    return this.toMessage(row);
  }

  /** The wire form of a runner row: proto texts are computed from the implementation, never stored. */
  toMessage(row: RunnerRow, def: RunnerDefinition | undefined = this.get(row.id)): Runner {
    const schemas = Object.fromEntries(
      Object.entries(def?.methods ?? {}).map(([name, m]) => [
        name,
        create(MethodSchemaSchema, {
          argsProto: m.argsProto,
          resultProto: m.resultProto,
          description: m.description,
          outputType: m.outputType,
          requireClientStream: m.requireClientStream ?? false,
        }),
      ]),
    );
    return create(RunnerSchema, {
      id: { value: row.id },
      data: {
        name: row.name,
        description: row.description,
        runnerType: row.runnerType,
        runnerSettingsProto: def?.settingsProto ?? "",
        definition: row.definition,
        methodProtoMap: create(MethodProtoMapSchema, { schemas }),
      },
    });
  }
}

/** Resolve `using` against a runner's methods: single-method runners default to their only method. */
export function resolveMethod(def: RunnerDefinition, using: string | undefined): [string, MethodDefinition] {
  const names = Object.keys(def.methods);
  const name = using && using.length > 0 ? using : names.length === 1 ? names[0] : def.defaultMethod;
  if (name === undefined) {
    throw invalid(`runner ${def.name} has several methods (${names.join(", ")}); set 'using'`);
  }
  const m = def.methods[name];
  if (!m) throw invalid(`runner ${def.name} has no method '${name}' (methods: ${names.join(", ")})`);
  return [name, m];
}

export const canStream = (m: MethodDefinition) =>
  m.outputType === StreamingOutputType.STREAMING || m.outputType === StreamingOutputType.BOTH;
