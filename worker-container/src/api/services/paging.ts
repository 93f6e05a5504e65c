// Shared request checks and response helpers for the service handlers.
import { toBinary } from "@bufbuild/protobuf";
import { ResultStatus } from "../../gen/jobworkerp/data/common_pb.js";
import { JobIdSchema, type JobId } from "../../gen/jobworkerp/data/job_pb.js";
import { JobResultSchema, type JobResult } from "../../gen/jobworkerp/data/job_result_pb.js";
import { AppError, invalid } from "../../core/errors.js";
import { kindOfResultStatus } from "../errors.js";

/** limit/offset with defaults and upper bounds; negative values are errors. */
export function page(limit: number | undefined, offset: number | bigint | undefined, defLimit: number, maxLimit: number, maxOffset = Number.MAX_SAFE_INTEGER) {
  if (limit !== undefined && limit < 0) throw invalid("limit must be >= 0");
  if (limit !== undefined && limit > maxLimit) throw invalid(`limit must be <= ${maxLimit}`);
  const off = offset === undefined ? 0 : Number(offset);
  if (off < 0) throw invalid("offset must be >= 0");
  if (off > maxOffset) throw invalid(`offset must be <= ${maxOffset}`);
  return { limit: limit ?? defLimit, offset: off };
}

export const jobIdHeader = (id: JobId) => ({ "x-job-id-bin": toBinary(JobIdSchema, id) });

/** A job that ended without SUCCESS, as the error of the RPC that waited for it (jobworkerp's mapping). */
export function failedJob(result: JobResult): AppError {
  const d = result.data!;
  const text = new TextDecoder().decode(d.output?.items ?? new Uint8Array()).slice(0, 4096);
  return new AppError(kindOfResultStatus(d.status), `job_id=${d.jobId?.value}, ${ResultStatus[d.status]}: ${text}`, {
    "x-job-result-bin": toBinary(JobResultSchema, result),
  });
}
