// Errors the CLI turns into one line on stderr and an exit code (never a stack trace).
import * as grpc from "@grpc/grpc-js";

/** Exit codes: 0 success, 1 failure (gRPC error, unreachable server), 2 usage error, 3 job ran but did not succeed. */
export const EXIT = { ok: 0, failure: 1, usage: 2, jobFailed: 3 } as const;

/** Bad command line (unknown flag, missing required flag, bad JSON…): exit 2. */
export class UsageError extends Error {}

/** A failure that is not a usage error, already phrased for the user: exit 1 (or the given code). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
  }
}

const STATUS_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k])) as Record<number, string>;

export function statusName(code: number | undefined): string {
  return (code !== undefined && STATUS_NAMES[code]) || `code ${code}`;
}

export function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as grpc.ServiceError).code === "number" && "details" in err;
}

/** The one-line message for `err`, e.g. `NOT_FOUND: worker 'x' not found`. */
export function describeError(err: unknown, address: string): { message: string; exitCode: number } {
  if (err instanceof UsageError) return { message: err.message, exitCode: EXIT.usage };
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  if (isServiceError(err)) {
    const details = err.details || err.message;
    const hint = err.code === grpc.status.UNAVAILABLE ? ` (server ${address})` : "";
    return { message: `${statusName(err.code)}: ${details}${hint}`, exitCode: EXIT.failure };
  }
  return { message: err instanceof Error ? err.message : String(err), exitCode: EXIT.failure };
}
