// `worker create|list|find|update|delete`: settings as JSON, encoded with the runner's served settings proto.
import { create } from "@bufbuild/protobuf";
import { QueueTypeSchema, ResponseType, ResponseTypeSchema, RetryPolicySchema, RetryTypeSchema, type RetryPolicy } from "../../../gen/jobworkerp/data/common_pb.js";
import type { Runner } from "../../../gen/jobworkerp/data/runner_pb.js";
import { type WorkerData, WorkerDataSchema } from "../../../gen/jobworkerp/data/worker_pb.js";
import { WorkerService } from "../../../gen/jobworkerp/service/worker_pb.js";
import { type OptionSpec, type Values, enumFlag, float, int, parseFlags, required, str, toggle, toggles } from "../args.js";
import { type Catalog, idOrName } from "../catalog.js";
import type { Group } from "../context.js";
import { UsageError } from "../errors.js";
import { encodeJson, messageType, parseJson } from "../proto_json.js";
import { enumValues, workerView } from "../views.js";

const DEFINITION_FLAGS = `  -d, --description TEXT     -r, --runner ID|NAME (alias --runner-id)   -s, --settings JSON
  -p, --periodic MS          -c, --channel NAME         -q, --queue-type NORMAL|WITH_BACKUP|DB_ONLY
  --response-type DIRECT|NO_RESULT (create default: DIRECT, NO_RESULT for periodic workers)
  --store-success --store-failure --use-static --broadcast-results (and --no-<flag>)
  --retry-type NONE|EXPONENTIAL|LINEAR|CONSTANT  --retry-interval MS  --retry-max-interval MS  --retry-max N  --retry-basis X`;
const CREATE_USAGE = `usage: jobworkerp worker create -n NAME -r RUNNER [options] [--json]\n${DEFINITION_FLAGS}`;
const UPDATE_USAGE = `usage: jobworkerp worker update -i ID|NAME [-n NEW_NAME] [options] [--json]\n${DEFINITION_FLAGS}`;
const FIND_USAGE = "usage: jobworkerp worker find (-i ID|NAME | -n NAME) [--json]";
const LIST_USAGE = "usage: jobworkerp worker list [--name-filter PREFIX] [--channel NAME] [--runner ID|NAME] [--limit N] [--offset N] [--json]";
const DELETE_USAGE = "usage: jobworkerp worker delete -i ID|NAME [--json]";

const BOOLS = ["store-success", "store-failure", "use-static", "broadcast-results"] as const;
const DEFINITION_OPTIONS: OptionSpec = {
  name: { type: "string", short: "n" },
  description: { type: "string", short: "d" },
  runner: { type: "string", short: "r" },
  "runner-id": { type: "string" },
  settings: { type: "string", short: "s" },
  periodic: { type: "string", short: "p" },
  channel: { type: "string", short: "c" },
  "queue-type": { type: "string", short: "q" },
  "response-type": { type: "string" },
  "retry-type": { type: "string" },
  "retry-interval": { type: "string" },
  "retry-max-interval": { type: "string" },
  "retry-max": { type: "string" },
  "retry-basis": { type: "string" },
  ...toggles(...BOOLS),
};

function runnerFlag(v: Values): string | undefined {
  if (str(v, "runner") !== undefined && str(v, "runner-id") !== undefined) throw new UsageError("give --runner or --runner-id, not both");
  return str(v, "runner") ?? str(v, "runner-id");
}

/** Runner settings JSON -> bytes with the runner's served settings proto (a runner without settings takes none). */
function encodeSettings(runner: Runner, json: string | undefined): Uint8Array {
  const proto = runner.data?.runnerSettingsProto ?? "";
  if (!proto.trim()) {
    const v = json === undefined || json.trim() === "" ? {} : parseJson(json, "--settings");
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0) return new Uint8Array();
    throw new UsageError(`--settings: runner ${runner.data?.name} takes no settings (give {} or leave it out)`);
  }
  if (json === undefined) return new Uint8Array();
  return encodeJson(messageType(proto), parseJson(json, "--settings"), "--settings");
}

/** The retry policy the flags describe, on top of `base`; undefined when no retry flag is given. */
function retryPolicy(v: Values, base: RetryPolicy | undefined): RetryPolicy | undefined {
  const type = enumFlag(v, "retry-type", enumValues(RetryTypeSchema));
  const interval = int(v, "retry-interval");
  const maxInterval = int(v, "retry-max-interval");
  const maxRetry = int(v, "retry-max");
  const basis = float(v, "retry-basis");
  if ([type, interval, maxInterval, maxRetry, basis].every((x) => x === undefined)) return base;
  const p = create(RetryPolicySchema, base ?? {});
  if (type !== undefined) p.type = type;
  if (interval !== undefined) p.interval = interval;
  if (maxInterval !== undefined) p.maxInterval = maxInterval;
  if (maxRetry !== undefined) p.maxRetry = maxRetry;
  if (basis !== undefined) p.basis = basis;
  return p;
}

/** Applies the definition flags to `d` (create: on defaults; update: on the current definition). */
async function applyFlags(catalog: Catalog, v: Values, d: WorkerData, isCreate: boolean): Promise<void> {
  const runnerRef = runnerFlag(v);
  const runner = await catalog.runner(runnerRef !== undefined ? idOrName(runnerRef) : { id: d.runnerId?.value ?? 0n });
  if (runnerRef !== undefined) d.runnerId = runner.id;
  if (str(v, "settings") !== undefined || (isCreate && runnerRef !== undefined)) d.runnerSettings = encodeSettings(runner, str(v, "settings"));
  if (str(v, "name") !== undefined) d.name = str(v, "name")!;
  if (str(v, "description") !== undefined) d.description = str(v, "description")!;
  const periodic = int(v, "periodic");
  if (periodic !== undefined) d.periodicInterval = periodic;
  if (str(v, "channel") !== undefined) d.channel = str(v, "channel") || undefined;
  const queueType = enumFlag(v, "queue-type", enumValues(QueueTypeSchema));
  if (queueType !== undefined) d.queueType = queueType;
  const responseType = enumFlag(v, "response-type", enumValues(ResponseTypeSchema));
  if (responseType !== undefined) d.responseType = responseType;
  else if (isCreate) d.responseType = d.periodicInterval > 0 ? ResponseType.NO_RESULT : ResponseType.DIRECT;
  const set = (flag: (typeof BOOLS)[number], apply: (b: boolean) => void) => {
    const b = toggle(v, flag);
    if (b !== undefined) apply(b);
  };
  set("store-success", (b) => (d.storeSuccess = b));
  set("store-failure", (b) => (d.storeFailure = b));
  set("use-static", (b) => (d.useStatic = b));
  set("broadcast-results", (b) => (d.broadcastResults = b));
  d.retryPolicy = retryPolicy(v, d.retryPolicy);
}

export const workerCommands: Group = {
  summary: "workers (a runner with its settings, channel, retry and result policy)",
  commands: {
    create: {
      summary: "create a worker",
      usage: CREATE_USAGE,
      async run(argv, { conn, catalog, print }) {
        const v = parseFlags(argv, DEFINITION_OPTIONS, CREATE_USAGE);
        const name = required(v, "name", CREATE_USAGE);
        if (runnerFlag(v) === undefined) throw new UsageError(`missing required flag --runner\n${CREATE_USAGE}`);
        const d = create(WorkerDataSchema, { name });
        await applyFlags(catalog, v, d, true);
        const res = await conn.unary(WorkerService, "create", d);
        const id = res.id?.value.toString();
        print.message(`created worker ${id} (${name})`, { id, name });
      },
    },
    list: {
      summary: "list workers",
      usage: LIST_USAGE,
      async run(argv, { conn, catalog, print }) {
        const v = parseFlags(argv, { "name-filter": { type: "string" }, channel: { type: "string", short: "c" }, runner: { type: "string", short: "r" }, limit: { type: "string", short: "l" }, offset: { type: "string", short: "o" } }, LIST_USAGE);
        const runner = str(v, "runner") === undefined ? undefined : await catalog.runner(idOrName(str(v, "runner")!));
        const offset = int(v, "offset");
        const rows = [];
        for await (const w of conn.stream(WorkerService, "findList", {
          nameFilter: str(v, "name-filter"),
          channel: str(v, "channel"),
          runnerIds: runner?.id ? [runner.id] : [],
          limit: int(v, "limit"),
          offset: offset === undefined ? undefined : BigInt(offset),
        })) {
          rows.push(await workerView(catalog, w));
        }
        print.list(rows, ["id", "name", "runner", "channel", "response_type", "periodic_interval", "queue_type", "broadcast_results", "runner_settings"]);
      },
    },
    find: {
      summary: "show one worker (by id or name) with its decoded settings",
      usage: FIND_USAGE,
      async run(argv, { catalog, print }) {
        const v = parseFlags(argv, { id: { type: "string", short: "i" }, name: { type: "string", short: "n" } }, FIND_USAGE);
        const ref = str(v, "name") !== undefined ? { name: str(v, "name")! } : str(v, "id") !== undefined ? idOrName(str(v, "id")!) : undefined;
        if (!ref) throw new UsageError(`missing required flag --id or --name\n${FIND_USAGE}`);
        print.record(await workerView(catalog, await catalog.worker(ref)));
      },
    },
    update: {
      summary: "change a worker (only the flags given)",
      usage: UPDATE_USAGE,
      async run(argv, { conn, catalog, print }) {
        const v = parseFlags(argv, { ...DEFINITION_OPTIONS, id: { type: "string", short: "i" } }, UPDATE_USAGE);
        const w = await catalog.worker(idOrName(required(v, "id", UPDATE_USAGE)));
        const d = w.data!;
        await applyFlags(catalog, v, d, false);
        await conn.unary(WorkerService, "update", { id: w.id, data: d });
        print.message(`updated worker ${w.id?.value} (${d.name})`, { id: w.id?.value.toString(), name: d.name, is_success: true });
      },
    },
    delete: {
      summary: "delete a worker (by id or name)",
      usage: DELETE_USAGE,
      async run(argv, { conn, catalog, print }) {
        const v = parseFlags(argv, { id: { type: "string", short: "i" } }, DELETE_USAGE);
        const w = await catalog.worker(idOrName(required(v, "id", DELETE_USAGE)));
        const res = await conn.unary(WorkerService, "delete", w.id!);
        print.message(`deleted worker ${w.id?.value} (${w.data?.name})`, { id: w.id?.value.toString(), is_success: res.isSuccess });
        return res.isSuccess ? 0 : 1;
      },
    },
  },
};
