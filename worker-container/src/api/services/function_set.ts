// FunctionSetService: CRUD of function sets, and their targets described as FunctionSpecs (FindDetail*).
import type { FunctionSet } from "../../gen/jobworkerp/function/data/function_set_pb.js";
import type { FunctionSetService } from "../../gen/jobworkerp/function/service/function_set_pb.js";
import { SystemFunctions } from "../../core/functions.js";
import type { System } from "../../core/system.js";
import type { ServiceImpl } from "../context.js";
import { page } from "./paging.js";

export function functionSetService(sys: System, functions = new SystemFunctions(sys)): ServiceImpl<typeof FunctionSetService> {
  const { sets } = functions;
  const detail = async (set: FunctionSet | undefined) =>
    set && {
      id: set.id,
      data: { name: set.data!.name, description: set.data!.description, category: set.data!.category, targets: await functions.specsOfSet(set) },
    };

  return {
    async create(data) {
      return { id: { value: await sets.create(data) } };
    },
    async update(set) {
      await sets.update(set);
      return { isSuccess: true };
    },
    async delete(id) {
      await sets.delete(id.value);
      return { isSuccess: true };
    },
    async find(id) {
      return { data: await sys.store.findFunctionSet(id.value) };
    },
    async findByName(req) {
      return { data: await sys.store.findFunctionSetByName(req.name) };
    },
    async *findList(req) {
      const p = page(req.limit, req.offset, 1000, 10_000);
      yield* await sys.store.findFunctionSets(p.limit, p.offset);
    },
    async count() {
      return { total: BigInt(await sys.store.countFunctionSets()) };
    },
    async findDetail(id) {
      return { data: await detail(await sys.store.findFunctionSet(id.value)) };
    },
    async findDetailByName(req) {
      return { data: await detail(await sys.store.findFunctionSetByName(req.name)) };
    },
  };
}
