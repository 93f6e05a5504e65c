import { RunnerType, RunnerTypeSchema } from "../../gen/jobworkerp/data/common_pb.js";
import type { RunnerService } from "../../gen/jobworkerp/service/runner_pb.js";
import { AppError, failedPrecondition, notFound } from "../../core/errors.js";
import type { RunnerFilter } from "../../core/ports.js";
import type { System } from "../../core/system.js";
import { checkEnum } from "../../core/validate.js";
import type { ServiceImpl } from "../context.js";
import { page } from "./paging.js";

export function runnerService(sys: System): ServiceImpl<typeof RunnerService> {
  const { store, runners } = sys;
  const filterOf = (r: { runnerTypes: number[]; nameFilter?: string }): RunnerFilter => ({
    runnerTypes: r.runnerTypes.length ? r.runnerTypes : undefined,
    namePrefix: r.nameFilter,
  });
  const message = async (id: bigint) => {
    const row = await store.findRunner(id);
    return row && runners.toMessage(row);
  };

  return {
    async create(req) {
      checkEnum(RunnerTypeSchema, req.runnerType, "runner_type");
      if (req.runnerType === RunnerType.PLUGIN) {
        throw new AppError("UNIMPLEMENTED", "PLUGIN runners are native (.so) libraries built for jobworkerp-rs; this server cannot load them");
      }
      if (req.runnerType === RunnerType.MCP_SERVER) {
        throw new AppError("UNIMPLEMENTED", "MCP_SERVER runners are not available in this build yet");
      }
      throw failedPrecondition(`runner type ${RunnerType[req.runnerType]} is built in; only PLUGIN and MCP_SERVER runners can be created`);
    },
    async delete(id) {
      if (runners.get(id.value)) throw failedPrecondition(`runner ${id.value} is built in and cannot be deleted`);
      if (!(await store.deleteRunner(id.value))) throw notFound(`runner ${id.value} not found`);
      return { isSuccess: true };
    },
    async find(id) {
      return { data: await message(id.value) };
    },
    async findByName(req) {
      const row = await store.findRunnerByName(req.name);
      return { data: row && runners.toMessage(row) };
    },
    async *findList(req) {
      const p = page(req.limit, req.offset, 1000, 10_000);
      for (const row of await store.findRunners(p)) yield runners.toMessage(row);
    },
    async count() {
      return { total: BigInt(await store.countRunners({})) };
    },
    async *findListBy(req) {
      const p = page(req.limit, req.offset, 1000, 10_000);
      const rows = await store.findRunners({ ...filterOf(req), ...p, sortBy: req.sortBy, ascending: req.ascending });
      for (const row of rows) yield runners.toMessage(row);
    },
    async countBy(req) {
      return { total: BigInt(await store.countRunners(filterOf(req))) };
    },
    async refreshMcpRunner(req) {
      // MCP_SERVER runners arrive with the runner catalogue; until then there is nothing to refresh.
      if (req.runnerId) {
        const row = await store.findRunner(req.runnerId.value);
        if (!row) throw notFound(`runner ${req.runnerId.value} not found`);
        if (row.runnerType !== RunnerType.MCP_SERVER) throw failedPrecondition(`runner ${row.name} is not an MCP_SERVER runner`);
      }
      return { updatedRunners: [], failures: [] };
    },
  };
}
