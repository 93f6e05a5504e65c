import { RunnerType, RunnerTypeSchema } from "../../gen/jobworkerp/data/common_pb.js";
import type { RunnerService } from "../../gen/jobworkerp/service/runner_pb.js";
import { failedPrecondition, notFound } from "../../core/errors.js";
import type { RunnerFilter } from "../../core/ports.js";
import type { System } from "../../core/system.js";
import { checkEnum } from "../../core/validate.js";
import type { ServiceImpl } from "../context.js";
import { page } from "./paging.js";
import { createMcpRunner, refreshMcpRunners } from "../../runners/mcp/registration.js";
import { createPluginRunner } from "../../runners/plugin/register.js";

export function runnerService(sys: System): ServiceImpl<typeof RunnerService> {
  const { store, runners } = sys;
  const mcp = { store, ids: sys.ids, runners }; // what creating a dynamic runner (MCP_SERVER, PLUGIN) needs
  const filterOf = (r: { runnerTypes: number[]; nameFilter?: string }): RunnerFilter => ({
    runnerTypes: r.runnerTypes.length ? r.runnerTypes : undefined,
    namePrefix: r.nameFilter,
  });
  const message = async (id: bigint) => {
    const row = await store.findRunner(id);
    return row && runners.describe(row);
  };

  return {
    async create(req) {
      checkEnum(RunnerTypeSchema, req.runnerType, "runner_type");
      // PLUGIN: `definition` is the path of a JS/TS plugin module (jobworkerp-rs's native .so plugins cannot load here)
      if (req.runnerType === RunnerType.PLUGIN) return { id: { value: await createPluginRunner(mcp, req) } };
      if (req.runnerType === RunnerType.MCP_SERVER) return { id: { value: await createMcpRunner(mcp, req) } };
      throw failedPrecondition(`runner type ${RunnerType[req.runnerType]} is built in; only PLUGIN and MCP_SERVER runners can be created`);
    },
    async delete(id) {
      if (runners.isBuiltin(id.value)) throw failedPrecondition(`runner ${id.value} is built in and cannot be deleted`);
      if (!(await store.deleteRunner(id.value))) throw notFound(`runner ${id.value} not found`);
      await runners.changed(id.value); // every process drops its loaded copy (e.g. an MCP server's tools)
      return { isSuccess: true };
    },
    async find(id) {
      return { data: await message(id.value) };
    },
    async findByName(req) {
      const row = await store.findRunnerByName(req.name);
      return { data: row && (await runners.describe(row)) };
    },
    async *findList(req) {
      const p = page(req.limit, req.offset, 1000, 10_000);
      for (const row of await store.findRunners(p)) yield await runners.describe(row);
    },
    async count() {
      return { total: BigInt(await store.countRunners({})) };
    },
    async *findListBy(req) {
      const p = page(req.limit, req.offset, 1000, 10_000);
      const rows = await store.findRunners({ ...filterOf(req), ...p, sortBy: req.sortBy, ascending: req.ascending });
      for (const row of rows) yield await runners.describe(row);
    },
    async countBy(req) {
      return { total: BigInt(await store.countRunners(filterOf(req))) };
    },
    async refreshMcpRunner(req) {
      if (req.runnerId) {
        const row = await store.findRunner(req.runnerId.value);
        if (!row) throw notFound(`runner ${req.runnerId.value} not found`);
        if (row.runnerType !== RunnerType.MCP_SERVER) throw failedPrecondition(`runner ${row.name} is not an MCP_SERVER runner`);
      }
      return refreshMcpRunners(mcp, req.runnerId?.value);
    },
  };
}
