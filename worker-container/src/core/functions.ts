// Workers and runners as functions an LLM can call (jobworkerp's "function" view): each gets a JSON Schema
// derived from its args proto, and a call is a DIRECT job whose args come from JSON and whose result goes
// back as JSON. Implements the LLM runner's ToolHost over the System.
import {
  create,
  fromJson,
  fromBinary,
  toBinary,
  toJson,
  ScalarType,
  type DescEnum,
  type DescField,
  type DescMessage,
  type JsonValue,
} from "@bufbuild/protobuf";
import { ResponseType, ResultStatus, RetryType } from "../gen/jobworkerp/data/common_pb.js";
import { WorkerDataSchema, type Worker } from "../gen/jobworkerp/data/worker_pb.js";
import { JobRequestSchema } from "../gen/jobworkerp/service/job_pb.js";
import type { ToolCallOutcome, ToolHost, ToolListOptions, ToolSpec } from "../runners/llm/tools.js";
import type { MethodDefinition, RunnerDefinition } from "../runners/runner.js";
import type { System } from "./system.js";

type Schema = Record<string, unknown>;

/** jobworkerp-rs's FunctionService.Call default. */
const DEFAULT_CALL_TIMEOUT_MS = 300_000;
const MAX_WORKER_TOOLS = 1000;
const MAX_DEPTH = 8;

// ------------------------------------------------------------------------------------------ JSON Schema

function scalarSchema(t: ScalarType): Schema {
  switch (t) {
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return { type: "number" };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      // protobuf JSON also takes 64-bit integers as strings
      return { type: ["integer", "string"] };
    default:
      return { type: "integer" };
  }
}

const enumSchema = (e: DescEnum): Schema => ({ type: "string", enum: e.values.map((v) => v.name) });

function fieldSchema(f: DescField, depth: number, seen: Set<string>): Schema {
  const item = (kind: "scalar" | "enum" | "message", scalar?: ScalarType, en?: DescEnum, msg?: DescMessage): Schema =>
    kind === "scalar" ? scalarSchema(scalar!) : kind === "enum" ? enumSchema(en!) : messageSchema(msg!, depth + 1, seen);
  let s: Schema;
  switch (f.fieldKind) {
    case "scalar":
      s = scalarSchema(f.scalar);
      break;
    case "enum":
      s = enumSchema(f.enum);
      break;
    case "message":
      s = messageSchema(f.message, depth + 1, seen);
      break;
    case "list":
      s = { type: "array", items: item(f.listKind, f.scalar, f.enum, f.message) };
      break;
    case "map":
      s = { type: "object", additionalProperties: item(f.mapKind, f.scalar, f.enum, f.message) };
      break;
  }
  return s;
}

/** JSON Schema of a message as protobuf JSON accepts it (proto field names; one field of a oneof at most). */
export function messageSchema(desc: DescMessage, depth = 0, seen = new Set<string>()): Schema {
  // recursive messages and very deep trees are left open
  if (depth > MAX_DEPTH || seen.has(desc.typeName)) return { type: "object" };
  const inner = new Set(seen).add(desc.typeName);
  const properties: Record<string, Schema> = {};
  for (const f of desc.fields) properties[f.name] = fieldSchema(f, depth, inner);
  const s: Schema = { type: "object", properties };
  const oneofs = desc.oneofs.filter((o) => !o.fields.every((f) => f.proto.proto3Optional));
  if (oneofs.length) s.description = oneofs.map((o) => `set at most one of: ${o.fields.map((f) => f.name).join(", ")}`).join("; ");
  return s;
}

// ------------------------------------------------------------------------------------------ the catalogue

/** OpenAI function names: [A-Za-z0-9_-]{1,64}. */
function toolName(raw: string): string {
  return raw.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || "_";
}

interface Target {
  spec: ToolSpec;
  method: string;
  def: RunnerDefinition;
  worker?: Worker;
}

/** One tool per method; multi-method runners name theirs `<name>__<method>`. */
function targets(base: string, description: string, def: RunnerDefinition, worker: Worker | undefined): Target[] {
  const methods = Object.entries(def.methods).filter(([, m]) => !m.requireClientStream);
  return methods.map(([method, m]) => {
    const name = toolName(methods.length > 1 ? `${base}__${method}` : base);
    const args = messageSchema(m.argsSchema);
    // a runner has no worker: its settings come with each call
    const parameters =
      worker || !def.settingsSchema
        ? args
        : { type: "object", properties: { settings: messageSchema(def.settingsSchema), arguments: args }, required: ["arguments"] };
    // a worker's own description says what it is for; a runner's method description adds how to call it
    const desc = worker ? description : [description, m.description].filter(Boolean).join(" — ");
    return { spec: { name, description: desc, parameters }, method, def, worker };
  });
}

function parseJson(text: string): Record<string, JsonValue> {
  let v: unknown;
  try {
    v = JSON.parse(text || "{}");
  } catch (e) {
    throw new Error(`arguments are not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("arguments must be a JSON object");
  return v as Record<string, JsonValue>;
}

function messageFromJson(desc: DescMessage, json: JsonValue, what: string) {
  try {
    return fromJson(desc, json);
  } catch (e) {
    throw new Error(`invalid ${what}: ${(e as Error).message}`);
  }
}

export class SystemFunctions implements ToolHost {
  constructor(
    private readonly sys: Pick<System, "store" | "runners" | "workers" | "front" | "ids">,
    private readonly callTimeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  ) {}

  private runnerDefs(): RunnerDefinition[] {
    return this.sys.runners
      .builtinRows(0)
      .map((r) => this.sys.runners.get(r.id))
      .filter((d): d is RunnerDefinition => d !== undefined);
  }

  private async catalogue(opts: ToolListOptions): Promise<Target[]> {
    if (opts.functionSetName) throw new Error(`function sets are not supported by this server (function_set_name '${opts.functionSetName}')`);
    const out: Target[] = [];
    if (opts.useWorkers) {
      // periodic workers cannot answer DIRECT
      for (const w of await this.sys.store.findWorkers({ isPeriodic: false, limit: MAX_WORKER_TOOLS })) {
        // dynamic runners (MCP servers…) are loaded on demand; one that cannot be reached offers no tool
        const def = await this.sys.runners.find(w.data!.runnerId!.value).catch(() => undefined);
        if (def) out.push(...targets(w.data!.name, w.data!.description || `worker ${w.data!.name} (${def.name})`, def, w));
      }
    }
    if (opts.useRunners) for (const def of this.runnerDefs()) out.push(...targets(def.name, def.description, def, undefined));
    // first one wins (workers before runners)
    const byName = new Map<string, Target>();
    for (const t of out) if (!byName.has(t.spec.name)) byName.set(t.spec.name, t);
    return [...byName.values()];
  }

  async list(opts: ToolListOptions): Promise<ToolSpec[]> {
    return (await this.catalogue(opts)).map((t) => t.spec);
  }

  async call(name: string, argsJson: string, signal: AbortSignal, onStarted?: (jobId: bigint) => void): Promise<ToolCallOutcome> {
    const target = (await this.catalogue({ useWorkers: true, useRunners: true })).find((t) => t.spec.name === name);
    if (!target) throw new Error(`no worker or runner named '${name}'`);
    const m = target.def.methods[target.method];
    const json = parseJson(argsJson);
    if (target.worker) return this.enqueue(target.worker.id!.value, target.method, m, messageFromJson(m.argsSchema, json, "arguments"), signal, onStarted);

    // a runner: a temporary DIRECT worker with the given settings
    const def = target.def;
    const settings = def.settingsSchema ? toBinary(def.settingsSchema, messageFromJson(def.settingsSchema, json.settings ?? {}, "settings")) : new Uint8Array();
    const args = messageFromJson(m.argsSchema, (def.settingsSchema ? json.arguments : json) ?? {}, "arguments");
    const workerId = await this.sys.workers.create(
      create(WorkerDataSchema, {
        name: `__llm_tool_${def.name}_${this.sys.ids.next()}`,
        description: "temporary worker of an LLM tool call",
        runnerId: { value: def.id },
        runnerSettings: settings,
        responseType: ResponseType.DIRECT,
        retryPolicy: { type: RetryType.NONE },
      }),
    );
    try {
      return await this.enqueue(workerId, target.method, m, args, signal, onStarted);
    } finally {
      await this.sys.workers.delete(workerId).catch(() => undefined);
    }
  }

  private async enqueue(
    workerId: bigint,
    using: string,
    m: MethodDefinition,
    args: Parameters<typeof toBinary>[1],
    signal: AbortSignal,
    onStarted?: (jobId: bigint) => void,
  ): Promise<ToolCallOutcome> {
    const req = create(JobRequestSchema, {
      worker: { case: "workerId", value: { value: workerId } },
      args: toBinary(m.argsSchema, args),
      using,
      timeout: BigInt(this.callTimeoutMs),
      overrides: { responseType: ResponseType.DIRECT },
    });
    const enq = await this.sys.front.enqueue(req, {}, "unary", signal);
    const jobId = enq.job.id!.value;
    onStarted?.(jobId);
    const result = await enq.result;
    if (!result) {
      if (signal.aborted) {
        await this.sys.front.delete(jobId).catch(() => undefined);
        throw signal.reason instanceof Error ? signal.reason : new Error("cancelled");
      }
      throw new Error(`tool job ${jobId} did not finish within ${this.callTimeoutMs} ms`);
    }
    const d = result.data!;
    const bytes = d.output?.items ?? new Uint8Array();
    if (d.status !== ResultStatus.SUCCESS) {
      throw new Error(`${ResultStatus[d.status] ?? d.status}: ${new TextDecoder().decode(bytes)}`);
    }
    const msg = fromBinary(m.resultSchema, bytes);
    return { result: JSON.stringify(toJson(m.resultSchema, msg, { useProtoFieldName: true })), jobId };
  }
}
