// Fetches a script, input or requirements file over http(s); failures become runner errors.
import { RunnerError } from "../runner.js";

export async function fetchText(raw: string, what: string, signal: AbortSignal): Promise<string> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RunnerError("FATAL_ERROR", `${what} is not a valid URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new RunnerError("FATAL_ERROR", `${what} must be http(s): ${raw}`);
  let res: Response;
  let body: string;
  try {
    res = await fetch(url, { signal });
    body = await res.text();
  } catch (e) {
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new RunnerError("ERROR_AND_RETRY", "cancelled");
    const err = e as Error & { cause?: { code?: string; message?: string } };
    throw new RunnerError("ERROR_AND_RETRY", `cannot fetch ${what} ${raw}: ${err.cause?.code ?? err.cause?.message ?? err.message}`);
  }
  if (!res.ok) {
    // 4xx will not get better by retrying; 5xx may.
    const kind = res.status >= 500 ? "ERROR_AND_RETRY" : "FATAL_ERROR";
    throw new RunnerError(kind, `cannot fetch ${what} ${raw}: HTTP ${res.status}`);
  }
  return body;
}
