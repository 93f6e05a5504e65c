// FunctionService: runners and workers as functions with JSON Schemas, called with JSON arguments.
import type { FunctionService } from "../../gen/jobworkerp/function/service/function_pb.js";
import { SystemFunctions } from "../../core/functions.js";
import type { System } from "../../core/system.js";
import type { ServiceImpl } from "../context.js";

export function functionService(sys: System, functions = new SystemFunctions(sys)): ServiceImpl<typeof FunctionService> {
  return {
    async *findList(req) {
      yield* await functions.listSpecs(req);
    },
    async *findListBySet(req) {
      yield* await functions.listSpecsBySet(req.name);
    },
    call(req, ctx) {
      return functions.callFunction(req, ctx);
    },
    async find(req) {
      return { data: await functions.findSpecs(req) };
    },
    async findByName(req) {
      return { data: await functions.findSpecsByName(req) };
    },
    async createWorker(req) {
      const w = await functions.createWorker(req, false);
      return { workerId: { value: w.workerId }, workerName: w.workerName };
    },
    async upsertWorker(req) {
      const w = await functions.createWorker(req, true);
      return { workerId: { value: w.workerId }, workerName: w.workerName };
    },
  };
}
