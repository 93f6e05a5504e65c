// `job-result listen|listen-by-worker|list|find`: results with their output decoded by the served result proto.
import { ResultStatusSchema } from "../../../gen/jobworkerp/data/common_pb.js";
import type { JobResult } from "../../../gen/jobworkerp/data/job_result_pb.js";
import { JobResultService } from "../../../gen/jobworkerp/service/job_result_pb.js";
import { bigId, int, parseFlags, required, str } from "../args.js";
import { idOrName, methodOf } from "../catalog.js";
import type { Ctx, Group } from "../context.js";
import { CliError, UsageError } from "../errors.js";
import { printResult, printResultLine } from "../results.js";
import { startSpinner } from "../spinner.js";
import { enumValues, resultView } from "../views.js";

const LISTEN_USAGE = "usage: jobworkerp job-result listen -j JOB_ID -w WORKER [--using METHOD] [-t TIMEOUT_MS] [--json]";
const BY_WORKER_USAGE = "usage: jobworkerp job-result listen-by-worker -w WORKER [--count N] [--json]  (until Ctrl-C, or N results)";
const LIST_USAGE = "usage: jobworkerp job-result list [-w WORKER] [--status SUCCESS,FATAL_ERROR,...] [--limit N] [--offset N] [--json]";
const FIND_USAGE = "usage: jobworkerp job-result find -i RESULT_ID [--json]";

/** The worker's method protos, so results decode without a lookup per result. */
async function protosOf(ctx: Ctx, workerRef: string, using?: string) {
  const worker = await ctx.catalog.worker(idOrName(workerRef));
  const m = methodOf(await ctx.catalog.runnerOfWorker(worker), using);
  return { worker, protos: { argsProto: m.schema.argsProto, resultProto: m.schema.resultProto } };
}

const workerOneof = (w: { id?: { value: bigint } }) => ({ case: "workerId" as const, value: { value: w.id!.value } });

export const jobResultCommands: Group = {
  summary: "job results (listen for them, or read stored ones)",
  commands: {
    listen: {
      summary: "wait for the result of a job (its worker must broadcast results)",
      usage: LISTEN_USAGE,
      async run(argv, ctx) {
        const v = parseFlags(argv, { "job-id": { type: "string", short: "j" }, worker: { type: "string", short: "w" }, using: { type: "string" }, timeout: { type: "string", short: "t" } }, LISTEN_USAGE);
        const jobId = bigId(v, "job-id") ?? BigInt(required(v, "job-id", LISTEN_USAGE));
        const { worker, protos } = await protosOf(ctx, required(v, "worker", LISTEN_USAGE), str(v, "using"));
        const timeout = int(v, "timeout");
        const spinner = startSpinner(`waiting for the result of job ${jobId}…`);
        let r: JobResult;
        try {
          r = await ctx.conn.unary(JobResultService, "listen", {
            jobId: { value: jobId },
            worker: workerOneof(worker),
            timeout: timeout === undefined ? undefined : BigInt(timeout),
            using: str(v, "using"),
          });
        } finally {
          spinner.stop();
        }
        return printResult(ctx, r, protos);
      },
    },
    "listen-by-worker": {
      summary: "print every result of a worker as it finishes (its worker must broadcast results)",
      usage: BY_WORKER_USAGE,
      async run(argv, ctx) {
        const v = parseFlags(argv, { worker: { type: "string", short: "w" }, count: { type: "string", short: "n" } }, BY_WORKER_USAGE);
        const { worker, protos } = await protosOf(ctx, required(v, "worker", BY_WORKER_USAGE));
        const count = int(v, "count");
        if (count === 0) throw new UsageError("--count must be at least 1");
        const stream = ctx.conn.stream(JobResultService, "listenByWorker", { worker: workerOneof(worker) }, { timeoutMs: 0 });
        let seen = 0;
        const spinner = startSpinner(`listening for results of ${worker.data?.name}…`);
        try {
          for await (const r of stream) {
            spinner.stop();
            await printResultLine(ctx, r, r.data?.using ? undefined : protos);
            if (count !== undefined && ++seen >= count) break;
          }
        } finally {
          spinner.stop();
        }
      },
    },
    list: {
      summary: "list stored results (workers with store_success / store_failure)",
      usage: LIST_USAGE,
      async run(argv, ctx) {
        const v = parseFlags(argv, { worker: { type: "string", short: "w" }, status: { type: "string" }, limit: { type: "string", short: "l" }, offset: { type: "string", short: "o" } }, LIST_USAGE);
        const worker = str(v, "worker") === undefined ? undefined : await ctx.catalog.worker(idOrName(str(v, "worker")!));
        const names = enumValues(ResultStatusSchema);
        const statuses = (str(v, "status") ?? "")
          .split(",")
          .filter(Boolean)
          .map((s) => {
            const n = names[s.trim().toUpperCase()];
            if (n === undefined) throw new UsageError(`--status: unknown status '${s}' (one of ${ResultStatusSchema.values.map((x) => x.name).join(", ")})`);
            return n;
          });
        const offset = int(v, "offset");
        const rows = [];
        for await (const r of ctx.conn.stream(JobResultService, "findListBy", {
          workerIds: worker ? [{ value: worker.id!.value }] : [],
          statuses,
          limit: int(v, "limit"),
          offset: offset === undefined ? undefined : BigInt(offset),
        })) {
          rows.push(await resultView(ctx.catalog, r));
        }
        ctx.print.list(rows, ["id", "job_id", "worker_name", "status", "start_time", "end_time", "output"]);
      },
    },
    find: {
      summary: "show one stored result",
      usage: FIND_USAGE,
      async run(argv, ctx) {
        const v = parseFlags(argv, { id: { type: "string", short: "i" } }, FIND_USAGE);
        const id = bigId(v, "id") ?? BigInt(required(v, "id", FIND_USAGE));
        const res = await ctx.conn.unary(JobResultService, "find", { value: id });
        if (!res.data) throw new CliError(`NOT_FOUND: job result ${id} not found`);
        return printResult(ctx, res.data, undefined);
      },
    },
  },
};
