// Typed application errors. The API layer maps each kind to a gRPC status; nothing else needs to know gRPC.

export type ErrorKind =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "UNAUTHENTICATED"
  | "DEADLINE_EXCEEDED"
  | "UNAVAILABLE"
  | "UNIMPLEMENTED"
  | "RESOURCE_EXHAUSTED"
  | "CANCELLED"
  | "ABORTED"
  | "INTERNAL";

export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** Binary trailers to send with the error (e.g. x-job-result-bin). */
    readonly trailers: Record<string, Uint8Array> = {},
  ) {
    super(message);
    this.name = "AppError";
  }
}

export const invalid = (msg: string) => new AppError("INVALID_ARGUMENT", msg);
export const notFound = (msg: string) => new AppError("NOT_FOUND", msg);
export const alreadyExists = (msg: string) => new AppError("ALREADY_EXISTS", msg);
export const failedPrecondition = (msg: string) => new AppError("FAILED_PRECONDITION", msg);
