// The signal a container run obeys: the job's (timeout/cancel) plus the runner's own timeout_sec.
import { RunnerError } from "../runner.js";

export interface RunLimit {
  signal: AbortSignal;
  /** The error to throw once `signal` aborted: the job's own reason, or our timeout. */
  error(): Error;
  dispose(): void;
}

export function runLimit(job: AbortSignal, timeoutSec: number): RunLimit {
  const own = new AbortController();
  const onJobAbort = () => own.abort(job.reason);
  if (job.aborted) onJobAbort();
  else job.addEventListener("abort", onJobAbort, { once: true });
  // Beyond setTimeout's range (~24.8 days) the job's own timeout is the only limit.
  const timer = timeoutSec > 0 && timeoutSec * 1000 <= 2 ** 31 - 1
    ? setTimeout(() => own.abort(new RunnerError("ERROR_AND_RETRY", `container timed out after ${timeoutSec} s (timeout_sec)`)), timeoutSec * 1000)
    : undefined;
  return {
    signal: own.signal,
    error: () => {
      const r = own.signal.reason;
      return r instanceof Error ? r : new RunnerError("ERROR_AND_RETRY", "cancelled");
    },
    dispose: () => {
      clearTimeout(timer);
      job.removeEventListener("abort", onJobAbort);
    },
  };
}

/** Resolves like `p`, or rejects with the limit's error as soon as it aborts (`p` is left to settle unobserved). */
export function untilAborted<T>(p: Promise<T>, limit: RunLimit): Promise<T> {
  p.catch(() => {});
  if (limit.signal.aborted) return Promise.reject(limit.error());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(limit.error());
    limit.signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => limit.signal.removeEventListener("abort", onAbort));
  });
}
