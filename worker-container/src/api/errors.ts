// AppError kinds → gRPC status codes; job result statuses → the gRPC status of a failed DIRECT/stream job.
import { status as Status } from "@grpc/grpc-js";
import { ResultStatus } from "../gen/jobworkerp/data/common_pb.js";
import type { ErrorKind } from "../core/errors.js";

export const grpcCode: Record<ErrorKind, Status> = {
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  NOT_FOUND: Status.NOT_FOUND,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  UNAUTHENTICATED: Status.UNAUTHENTICATED,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  UNAVAILABLE: Status.UNAVAILABLE,
  UNIMPLEMENTED: Status.UNIMPLEMENTED,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  CANCELLED: Status.CANCELLED,
  ABORTED: Status.ABORTED,
  INTERNAL: Status.INTERNAL,
};

/** jobworkerp-rs's mapping of a failed job's status to the error kind of the RPC that waited for it. */
export function kindOfResultStatus(s: ResultStatus): ErrorKind {
  switch (s) {
    case ResultStatus.ERROR_AND_RETRY:
      return "UNAVAILABLE";
    case ResultStatus.MAX_RETRY:
    case ResultStatus.ABORT:
      return "ABORTED";
    case ResultStatus.FATAL_ERROR:
      return "FAILED_PRECONDITION";
    case ResultStatus.CANCELLED:
      return "CANCELLED";
    default:
      return "INTERNAL";
  }
}
