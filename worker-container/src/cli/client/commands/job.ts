// `job enqueue|enqueue-for-stream|find|list|delete`: args as JSON, encoded with the served args proto of the
// worker's runner method; results and streamed chunks decoded with its result proto.
import { Priority, ResponseType, ResultStatusSchema } from "../../../gen/jobworkerp/data/common_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { JobService, type JobRequestSchema } from "../../../gen/jobworkerp/service/job_pb.js";
import { type Values, bigId, enumFlag, int, parseFlags, required, str, timeFlag } from "../args.js";
import { decodeOrRaw, idOrName, methodOf } from "../catalog.js";
import type { Ctx, Group } from "../context.js";
import { CliError, EXIT } from "../errors.js";
import { toJsonText } from "../output.js";
import { encodeJson, messageType, parseJson } from "../proto_json.js";
import { jobIdFromHeaders, jobResultFromError, printResult } from "../results.js";
import { startSpinner } from "../spinner.js";
import { enumName, jobView } from "../views.js";

const ENQUEUE_FLAGS = `  -w, --worker ID|NAME (required)   -a, --args JSON (default {})   --using METHOD
  -p, --priority HIGH|MEDIUM|LOW    -t, --timeout MS   -u, --unique-key KEY
  -r, --run-after-time (alias --run-after) UNIX_MS|ISO-8601|+<n>[ms|s|m|h]`;
const ENQUEUE_USAGE = `usage: jobworkerp job enqueue -w WORKER [-a JSON] [options] [--json]\n${ENQUEUE_FLAGS}`;
const STREAM_USAGE = `usage: jobworkerp job enqueue-for-stream -w WORKER [-a JSON] [options] [--json]\n${ENQUEUE_FLAGS}`;
const FIND_USAGE = "usage: jobworkerp job find -i JOB_ID [--json]";
const LIST_USAGE = "usage: jobworkerp job list [--limit N] [--offset N] [--json]";
const DELETE_USAGE = "usage: jobworkerp job delete -i JOB_ID [--json]";

const ENQUEUE_OPTIONS = {
  worker: { type: "string", short: "w" },
  args: { type: "string", short: "a" },
  using: { type: "string" },
  priority: { type: "string", short: "p" },
  timeout: { type: "string", short: "t" },
  "unique-key": { type: "string", short: "u" },
  "run-after-time": { type: "string", short: "r" },
  "run-after": { type: "string" },
} as const;

// jobworkerp-client says MIDDLE for MEDIUM
const PRIORITIES: Record<string, Priority> = { HIGH: Priority.HIGH, MEDIUM: Priority.MEDIUM, MIDDLE: Priority.MEDIUM, LOW: Priority.LOW, PRIORITY_HIGH: Priority.HIGH, PRIORITY_MEDIUM: Priority.MEDIUM, PRIORITY_LOW: Priority.LOW };

/** Resolves the worker and its method, encodes the args and builds the JobRequest. */
async function prepare(ctx: Ctx, v: Values, usage: string) {
  const workerRef = idOrName(required(v, "worker", usage));
  const worker = await ctx.catalog.worker(workerRef);
  const runner = await ctx.catalog.runnerOfWorker(worker);
  const method = methodOf(runner, str(v, "using"));
  const args = encodeJson(messageType(method.schema.argsProto), parseJson(str(v, "args") ?? "{}", "--args"), "--args");
  const runAfter = timeFlag(v, "run-after-time") ?? timeFlag(v, "run-after");
  const timeout = int(v, "timeout");
  const req: MessageInitShape<typeof JobRequestSchema> = {
    worker: "id" in workerRef ? { case: "workerId", value: { value: workerRef.id } } : { case: "workerName", value: workerRef.name },
    args,
    uniqKey: str(v, "unique-key"),
    runAfterTime: runAfter,
    priority: enumFlag(v, "priority", PRIORITIES),
    timeout: timeout === undefined ? undefined : BigInt(timeout),
    using: str(v, "using"),
  };
  return { worker, runner, method, req, protos: { argsProto: method.schema.argsProto, resultProto: method.schema.resultProto } };
}

export const jobCommands: Group = {
  summary: "jobs (enqueue work for a worker)",
  commands: {
    enqueue: {
      summary: "enqueue a job; DIRECT workers print the decoded result, others the job id",
      usage: ENQUEUE_USAGE,
      async run(argv, ctx) {
        const v = parseFlags(argv, ENQUEUE_OPTIONS, ENQUEUE_USAGE);
        const { worker, req, protos } = await prepare(ctx, v, ENQUEUE_USAGE);
        const direct = worker.data?.responseType === ResponseType.DIRECT;
        const spinner = direct ? startSpinner(`waiting for the result of a job on ${worker.data?.name}…`) : undefined;
        let res;
        try {
          res = await ctx.conn.unary(JobService, "enqueue", req);
        } finally {
          spinner?.stop();
        }
        if (res.result) return printResult(ctx, res.result, protos);
        const id = res.id?.value.toString();
        ctx.print.message(`enqueued job ${id}`, { job_id: id });
      },
    },
    "enqueue-for-stream": {
      summary: "enqueue a job and print its streamed chunks as they come, then its final status",
      usage: STREAM_USAGE,
      async run(argv, ctx) {
        const v = parseFlags(argv, ENQUEUE_OPTIONS, STREAM_USAGE);
        const { worker, req, protos } = await prepare(ctx, v, STREAM_USAGE);
        let jobId: string | undefined;
        const spinner = startSpinner(`waiting for output of a job on ${worker.data?.name}…`);
        const p = ctx.print;
        try {
          for await (const item of ctx.conn.stream(JobService, "enqueueForStream", req, { onHeaders: (md) => (jobId ??= jobIdFromHeaders(md)) })) {
            spinner.stop();
            const it = item.item;
            if (it.case === "data") {
              const chunk = decodeOrRaw(protos.resultProto, it.value);
              p.item({ job_id: jobId, chunk }, toJsonText(chunk));
            } else if (it.case === "finalCollected") {
              const collected = decodeOrRaw(protos.resultProto, it.value);
              p.item({ job_id: jobId, final_collected: collected }, `final: ${toJsonText(collected)}`);
            } else if (it.case === "end") {
              p.item({ job_id: jobId, status: "SUCCESS", end: it.value.metadata }, `status: SUCCESS (job ${jobId})`);
            }
          }
        } catch (err) {
          spinner.stop();
          const r = jobResultFromError(err);
          if (!r) throw err;
          const status = enumName(ResultStatusSchema, r.data?.status);
          const message = Buffer.from(r.data?.output?.items ?? new Uint8Array()).toString("utf8");
          p.item({ job_id: jobId, status, error: message }, `status: ${status} (job ${jobId}): ${message}`);
          return EXIT.jobFailed;
        } finally {
          spinner.stop();
        }
      },
    },
    find: {
      summary: "show one job (queued or scheduled) with its decoded args",
      usage: FIND_USAGE,
      async run(argv, ctx) {
        const v = parseFlags(argv, { id: { type: "string", short: "i" } }, FIND_USAGE);
        const id = bigId(v, "id") ?? BigInt(required(v, "id", FIND_USAGE));
        const res = await ctx.conn.unary(JobService, "find", { value: id });
        if (!res.data) throw new CliError(`NOT_FOUND: job ${id} not found`);
        ctx.print.record(await jobView(ctx.catalog, res.data));
      },
    },
    list: {
      summary: "list jobs",
      usage: LIST_USAGE,
      async run(argv, ctx) {
        const v = parseFlags(argv, { limit: { type: "string", short: "l" }, offset: { type: "string", short: "o" } }, LIST_USAGE);
        const offset = int(v, "offset");
        const rows = [];
        for await (const j of ctx.conn.stream(JobService, "findList", { limit: int(v, "limit"), offset: offset === undefined ? undefined : BigInt(offset) })) {
          rows.push(await jobView(ctx.catalog, j));
        }
        ctx.print.list(rows, ["id", "worker_id", "priority", "run_after_time", "timeout", "using", "args"]);
      },
    },
    delete: {
      summary: "delete (cancel) a job",
      usage: DELETE_USAGE,
      async run(argv, ctx) {
        const v = parseFlags(argv, { id: { type: "string", short: "i" } }, DELETE_USAGE);
        const id = bigId(v, "id") ?? BigInt(required(v, "id", DELETE_USAGE));
        const res = await ctx.conn.unary(JobService, "delete", { value: id });
        ctx.print.message(`deleted job ${id}`, { id: id.toString(), is_success: res.isSuccess });
        return res.isSuccess ? 0 : EXIT.failure;
      },
    },
  },
};
