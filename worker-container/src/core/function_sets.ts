// Function sets: named collections of runners and workers (optionally one method each) offered together as
// functions, e.g. the tools of an LLM chat (function_set_name) or of an MCP server.
import { create } from "@bufbuild/protobuf";
import { FunctionSetSchema, type FunctionSet, type FunctionSetData } from "../gen/jobworkerp/function/data/function_set_pb.js";
import type { FunctionUsing } from "../gen/jobworkerp/function/data/function_pb.js";
import { invalid, notFound } from "./errors.js";
import type { System } from "./system.js";
import { checkName } from "./validate.js";

const MAX_TARGETS = 1000;

/** A stable key of a target, so that a set lists each one once. */
const targetKey = (t: FunctionUsing) => `${t.functionId?.id.case}:${t.functionId?.id.value?.value}:${t.using ?? ""}`;

export class FunctionSets {
  constructor(private readonly sys: Pick<System, "store" | "ids">) {}

  /** Checks the data and returns it with duplicate targets dropped (first occurrence kept). */
  private async normalize(data: FunctionSetData): Promise<FunctionSetData> {
    checkName(data.name, "name");
    if (data.targets.length > MAX_TARGETS) throw invalid(`a function set holds at most ${MAX_TARGETS} targets`);
    const seen = new Set<string>();
    const targets: FunctionUsing[] = [];
    for (const [i, t] of data.targets.entries()) {
      const id = t.functionId?.id;
      if (!id?.case) throw invalid(`targets[${i}]: function_id must name a runner_id or a worker_id`);
      const exists = id.case === "runnerId" ? await this.sys.store.findRunner(id.value.value) : await this.sys.store.findWorker(id.value.value);
      if (!exists) throw invalid(`targets[${i}]: ${id.case === "runnerId" ? "runner" : "worker"} ${id.value.value} does not exist`);
      if (t.using !== undefined && t.using.length > 255) throw invalid(`targets[${i}]: using is longer than 255 characters`);
      if (seen.has(targetKey(t))) continue;
      seen.add(targetKey(t));
      targets.push(t);
    }
    return { ...data, targets };
  }

  async create(data: FunctionSetData): Promise<bigint> {
    const id = this.sys.ids.next();
    await this.sys.store.createFunctionSet(create(FunctionSetSchema, { id: { value: id }, data: await this.normalize(data) }), Date.now());
    return id;
  }

  async update(set: FunctionSet): Promise<void> {
    if (!set.id || !set.data) throw invalid("id and data are required");
    const ok = await this.sys.store.updateFunctionSet(create(FunctionSetSchema, { id: set.id, data: await this.normalize(set.data) }));
    if (!ok) throw notFound(`function set ${set.id.value} not found`);
  }

  async delete(id: bigint): Promise<void> {
    if (!(await this.sys.store.deleteFunctionSet(id))) throw notFound(`function set ${id} not found`);
  }

  /** The set of that name, or NOT_FOUND. */
  async byName(name: string): Promise<FunctionSet> {
    const set = await this.sys.store.findFunctionSetByName(name);
    if (!set) throw notFound(`function set '${name}' not found`);
    return set;
  }
}
