// Looks up workers and runners by id or name and hands out the served proto types that decode their bytes.
import type { Runner, MethodSchema } from "../../gen/jobworkerp/data/runner_pb.js";
import type { Worker } from "../../gen/jobworkerp/data/worker_pb.js";
import { RunnerService } from "../../gen/jobworkerp/service/runner_pb.js";
import { WorkerService } from "../../gen/jobworkerp/service/worker_pb.js";
import type { Connection } from "./connection.js";
import { CliError, EXIT, UsageError } from "./errors.js";
import { decodeToJson, messageType } from "./proto_json.js";

/** A command-line reference to a worker or runner: all digits is an id, anything else a name. */
export type IdOrName = { id: bigint } | { name: string };

export function idOrName(raw: string): IdOrName {
  return /^\d+$/.test(raw) ? { id: BigInt(raw) } : { name: raw };
}
export const refText = (r: IdOrName) => ("id" in r ? `id ${r.id}` : `'${r.name}'`);

const notFound = (what: string, ref: IdOrName) => new CliError(`NOT_FOUND: ${what} ${refText(ref)} not found`, EXIT.failure);

export class Catalog {
  private readonly runners = new Map<bigint, Promise<Runner>>();
  private readonly workers = new Map<bigint, Promise<Worker>>();

  constructor(private readonly conn: Connection) {}

  async runner(ref: IdOrName): Promise<Runner> {
    if ("id" in ref) {
      let p = this.runners.get(ref.id);
      if (!p) {
        p = this.conn.unary(RunnerService, "find", { value: ref.id }).then((r) => r.data ?? Promise.reject(notFound("runner", ref)));
        this.runners.set(ref.id, p);
      }
      return p;
    }
    const r = (await this.conn.unary(RunnerService, "findByName", { name: ref.name })).data;
    if (!r) throw notFound("runner", ref);
    this.runners.set(r.id!.value, Promise.resolve(r));
    return r;
  }

  async worker(ref: IdOrName): Promise<Worker> {
    if ("id" in ref) {
      let p = this.workers.get(ref.id);
      if (!p) {
        p = this.conn.unary(WorkerService, "find", { value: ref.id }).then((r) => r.data ?? Promise.reject(notFound("worker", ref)));
        this.workers.set(ref.id, p);
      }
      return p;
    }
    const w = (await this.conn.unary(WorkerService, "findByName", { name: ref.name })).data;
    if (!w) throw notFound("worker", ref);
    this.workers.set(w.id!.value, Promise.resolve(w));
    return w;
  }

  async runnerOfWorker(w: Worker): Promise<Runner> {
    return this.runner({ id: w.data?.runnerId?.value ?? 0n });
  }
}

/** The method `using` names, or the runner's only / `run` method. */
export function methodOf(runner: Runner, using: string | undefined): { name: string; schema: MethodSchema } {
  const schemas = runner.data?.methodProtoMap?.schemas ?? {};
  const names = Object.keys(schemas);
  const name = using ?? (names.length === 1 ? names[0] : names.includes("run") ? "run" : undefined);
  if (name === undefined || !schemas[name]) {
    const which = using === undefined ? "has several methods; choose one with --using" : `has no method '${using}'`;
    throw new UsageError(`runner ${runner.data?.name} ${which} (methods: ${names.join(", ") || "none"})`);
  }
  return { name, schema: schemas[name] };
}

/** Decodes bytes with a served proto text; bytes that do not decode are shown as base64 rather than failing. */
export function decodeOrRaw(protoText: string | undefined, bytes: Uint8Array): unknown {
  if (bytes.length === 0 && !protoText?.trim()) return null;
  if (!protoText?.trim()) return { raw_base64: Buffer.from(bytes).toString("base64") };
  try {
    return decodeToJson(messageType(protoText), bytes);
  } catch {
    return { raw_base64: Buffer.from(bytes).toString("base64") };
  }
}
