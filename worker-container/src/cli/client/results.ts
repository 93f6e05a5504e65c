// Showing job results and streamed chunks, shared by `job enqueue*` and `job-result *`.
import { fromBinary } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { ResultStatus, ResultStatusSchema } from "../../gen/jobworkerp/data/common_pb.js";
import { type JobResult, JobResultSchema } from "../../gen/jobworkerp/data/job_result_pb.js";
import { JobIdSchema } from "../../gen/jobworkerp/data/job_pb.js";
import type { Ctx } from "./context.js";
import { EXIT, isServiceError } from "./errors.js";
import { type Row, toJsonText } from "./output.js";
import { enumName, methodProto, outputOf, resultView } from "./views.js";

const time = (ms: bigint | undefined) => (ms && ms > 0n ? new Date(Number(ms)).toISOString() : undefined);

/** The fields a person wants from a result; --json gets the full view. */
function humanResult(r: JobResult, resultProto: string | undefined): Row {
  const d = r.data;
  const elapsed = d && d.endTime > 0n && d.startTime > 0n ? `${d.endTime - d.startTime} ms` : undefined;
  return {
    job_id: d?.jobId?.value.toString(),
    result_id: r.id?.value ? r.id.value.toString() : undefined,
    worker: d ? `${d.workerName} (${d.workerId?.value})` : undefined,
    status: enumName(ResultStatusSchema, d?.status),
    using: d?.using,
    retried: d?.retried,
    started: time(d?.startTime),
    elapsed,
    output: outputOf(r, resultProto),
  };
}

export const resultExitCode = (r: JobResult) => ((r.data?.status ?? ResultStatus.SUCCESS) === ResultStatus.SUCCESS ? EXIT.ok : EXIT.jobFailed);

/** Prints one result (card or JSON document) and returns the exit code its status calls for. */
export async function printResult(ctx: Ctx, r: JobResult, protos?: { argsProto?: string; resultProto?: string }): Promise<number> {
  if (ctx.print.json) ctx.print.record(await resultView(ctx.catalog, r, protos));
  else ctx.print.record(humanResult(r, protos?.resultProto ?? (await methodProto(ctx.catalog, r.data?.workerId?.value, r.data?.using, "resultProto"))));
  return resultExitCode(r);
}

/** One line per result for streams (listen-by-worker): compact JSON with --json, a summary otherwise. */
export async function printResultLine(ctx: Ctx, r: JobResult, protos?: { argsProto?: string; resultProto?: string }): Promise<void> {
  const view = await resultView(ctx.catalog, r, protos);
  const d = r.data;
  ctx.print.item(view, `job ${d?.jobId?.value}  ${enumName(ResultStatusSchema, d?.status)}  ${toJsonText(view.output)}`);
}

/** A JobId sent as the binary response header x-job-id-bin (streaming enqueues). */
export function jobIdFromHeaders(md: grpc.Metadata): string | undefined {
  const v = md.get("x-job-id-bin")[0];
  if (!(v instanceof Buffer)) return undefined;
  try {
    return fromBinary(JobIdSchema, v).value.toString();
  } catch {
    return undefined;
  }
}

/** The full JobResult a failed stream carries in its x-job-result-bin trailer, if any. */
export function jobResultFromError(err: unknown): JobResult | undefined {
  if (!isServiceError(err)) return undefined;
  const v = err.metadata?.get("x-job-result-bin")[0];
  if (!(v instanceof Buffer)) return undefined;
  try {
    return fromBinary(JobResultSchema, v);
  } catch {
    return undefined;
  }
}
