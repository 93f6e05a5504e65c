// HTTP plumbing shared by the OpenAI-compatible and Ollama clients: JSON POSTs, SSE and NDJSON bodies,
// and the mapping of failures to runner errors (network and 429/5xx are retried, other 4xx are not).
import { RunnerError } from "../runner.js";

export interface PostOptions {
  headers?: Record<string, string>;
  signal: AbortSignal;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new RunnerError("ERROR_AND_RETRY", "cancelled");
}

/** fetch failures (refused, DNS, reset) → ERROR_AND_RETRY naming the endpoint; an abort rethrows its reason. */
function networkError(e: unknown, url: string, signal: AbortSignal): Error {
  if (signal.aborted) return abortReason(signal);
  if (e instanceof RunnerError) return e;
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err.cause?.code ?? err.cause?.message ?? err.message;
  return new RunnerError("ERROR_AND_RETRY", `LLM request to ${new URL(url).origin} failed: ${cause}`);
}

/** The API's own error text: OpenAI {error:{message}}, Ollama {error:"..."}, else the raw body. */
function apiErrorText(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: string | { message?: string } };
    if (typeof j.error === "string") return j.error;
    if (j.error?.message) return j.error.message;
  } catch {
    // not JSON
  }
  return body.slice(0, 500);
}

export async function post(url: string, body: unknown, opts: PostOptions): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...opts.headers },
      body: JSON.stringify(body),
      signal: opts.signal,
    });
  } catch (e) {
    throw networkError(e, url, opts.signal);
  }
  if (!res.ok) {
    const text = await res.text().catch(() => "");
    const retry = res.status === 408 || res.status === 429 || res.status >= 500;
    throw new RunnerError(retry ? "ERROR_AND_RETRY" : "FATAL_ERROR", `LLM API ${new URL(url).pathname} answered ${res.status}: ${apiErrorText(text)}`);
  }
  return res;
}

export async function postJson<T>(url: string, body: unknown, opts: PostOptions): Promise<T> {
  const res = await post(url, body, opts);
  try {
    return (await res.json()) as T;
  } catch (e) {
    throw opts.signal.aborted ? abortReason(opts.signal) : new RunnerError("ERROR_AND_RETRY", `LLM API ${url} sent invalid JSON: ${(e as Error).message}`);
  }
}

/** The body's lines, as they arrive. */
async function* lines(res: Response, url: string, signal: AbortSignal): AsyncGenerator<string> {
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let done = false;
  try {
    for (;;) {
      let r: ReadableStreamReadResult<string>;
      try {
        r = await reader.read();
      } catch (e) {
        throw networkError(e, url, signal);
      }
      if (r.done) {
        done = true;
        break;
      }
      buf += r.value;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        yield buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
      }
    }
    if (buf.length > 0) yield buf;
  } finally {
    if (!done) await reader.cancel().catch(() => {});
  }
}

function parseLine<T>(text: string, url: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new RunnerError("ERROR_AND_RETRY", `LLM API ${url} streamed invalid JSON: ${text.slice(0, 200)}`);
  }
}

/** Server-sent events: the JSON of each `data:` event until `[DONE]` (OpenAI streaming). */
export async function* sseJson<T>(res: Response, url: string, signal: AbortSignal): AsyncGenerator<T> {
  let data: string[] = [];
  for await (const line of lines(res, url, signal)) {
    if (line === "") {
      if (data.length === 0) continue;
      const payload = data.join("\n");
      data = [];
      if (payload === "[DONE]") return;
      yield parseLine<T>(payload, url);
    } else if (line.startsWith("data:")) {
      data.push(line.slice(5).replace(/^ /, ""));
    } // comments (":") and other fields (event, id, retry) carry nothing we use
  }
  if (data.length > 0 && data.join("\n") !== "[DONE]") yield parseLine<T>(data.join("\n"), url);
}

/** Newline-delimited JSON (Ollama streaming). */
export async function* ndjson<T>(res: Response, url: string, signal: AbortSignal): AsyncGenerator<T> {
  for await (const line of lines(res, url, signal)) {
    if (line.trim() === "") continue;
    yield parseLine<T>(line, url);
  }
}
