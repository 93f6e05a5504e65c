// Which Slack failures are worth retrying. Slack answers most failures with HTTP 200 and {ok:false, error:"code"}.
import { RunnerError } from "../runner.js";

// Transient on Slack's side; everything else (auth, channel, payload errors) fails the same way on every retry.
const RETRYABLE = new Set(["ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"]);

export function slackApiError(code: string, retryAfter: string | null): RunnerError {
  const wait = retryAfter ? ` (retry after ${retryAfter}s)` : "";
  return new RunnerError(RETRYABLE.has(code) ? "ERROR_AND_RETRY" : "FATAL_ERROR", `slack chat.postMessage failed: ${code}${wait}`);
}

/** A non-200 answer without a Slack error body. */
export function slackHttpError(status: number, retryAfter: string | null, body: string): RunnerError {
  if (status === 429) return slackApiError("ratelimited", retryAfter);
  const kind = status >= 500 || status === 408 ? "ERROR_AND_RETRY" : "FATAL_ERROR";
  return new RunnerError(kind, `slack chat.postMessage failed: HTTP ${status}${body ? `: ${body.slice(0, 300)}` : ""}`);
}
