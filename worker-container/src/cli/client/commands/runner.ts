// `runner list|find`: the runners the server offers, with their served proto texts.
import { RunnerTypeSchema } from "../../../gen/jobworkerp/data/common_pb.js";
import { RunnerService } from "../../../gen/jobworkerp/service/runner_pb.js";
import { int, parseFlags, str } from "../args.js";
import { idOrName } from "../catalog.js";
import type { Group } from "../context.js";
import { UsageError } from "../errors.js";
import { renderCard } from "../output.js";
import { enumValues, runnerView } from "../views.js";

const LIST_USAGE = "usage: jobworkerp runner list [--runner-type COMMAND,HTTP_REQUEST,...] [--name-filter PREFIX] [--limit N] [--offset N] [--json]";
const FIND_USAGE = "usage: jobworkerp runner find (-i ID|NAME | -n NAME) [--json]";

export const runnerCommands: Group = {
  summary: "runners (the kinds of work a worker can do)",
  commands: {
    list: {
      summary: "list runners",
      usage: LIST_USAGE,
      async run(argv, { conn, print }) {
        const v = parseFlags(argv, { "runner-type": { type: "string" }, "name-filter": { type: "string" }, limit: { type: "string", short: "l" }, offset: { type: "string", short: "o" } }, LIST_USAGE);
        const types = enumValues(RunnerTypeSchema);
        const runnerTypes = (str(v, "runner-type") ?? "")
          .split(",")
          .filter(Boolean)
          .map((t) => {
            const n = types[t.trim().toUpperCase()];
            if (n === undefined) throw new UsageError(`--runner-type: unknown runner type '${t}' (one of ${RunnerTypeSchema.values.map((x) => x.name).join(", ")})`);
            return n;
          });
        const rows = [];
        for await (const r of conn.stream(RunnerService, "findListBy", { runnerTypes, nameFilter: str(v, "name-filter"), limit: int(v, "limit"), offset: int(v, "offset") === undefined ? undefined : BigInt(int(v, "offset")!), ascending: true })) {
          rows.push(runnerView(r, !!print.json));
        }
        print.list(rows, ["id", "name", "runner_type", "methods", "description"]);
      },
    },
    find: {
      summary: "show one runner (by id or name) with its proto texts",
      usage: FIND_USAGE,
      async run(argv, { catalog, print }) {
        const v = parseFlags(argv, { id: { type: "string", short: "i" }, name: { type: "string", short: "n" } }, FIND_USAGE);
        const ref = str(v, "name") !== undefined ? { name: str(v, "name")! } : str(v, "id") !== undefined ? idOrName(str(v, "id")!) : undefined;
        if (!ref) throw new UsageError(`missing required flag --id or --name\n${FIND_USAGE}`);
        const r = await catalog.runner(ref);
        if (print.json) return void print.record(runnerView(r, true));
        // people read proto texts as they are, not as JSON strings
        const sections = [`--- runner_settings_proto ---\n${r.data?.runnerSettingsProto.trim() || "(none)"}`];
        for (const [name, m] of Object.entries(r.data?.methodProtoMap?.schemas ?? {})) {
          sections.push(`--- method ${name}: args_proto ---\n${m.argsProto.trim()}`, `--- method ${name}: result_proto ---\n${m.resultProto.trim()}`);
        }
        print.message([renderCard(runnerView(r, false)), ...sections].join("\n"));
      },
    },
  },
};
