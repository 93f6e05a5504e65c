// HTTP_REQUEST runner: one HTTP request to the worker's base_url + args.path via global fetch
// (undici's global dispatcher keeps connections alive across jobs).
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import { HttpRequestArgsSchema, type HttpRequestArgs } from "../../gen/jobworkerp/runner/http_request_args_pb.js";
import { HttpRequestRunnerSettingsSchema } from "../../gen/jobworkerp/runner/http_request_settings_pb.js";
import { HttpResponseResultSchema } from "../../gen/jobworkerp/runner/http_response_result_pb.js";
import { protoText } from "../proto_text.js";
import { RunnerError, type RunContext, type RunnerDefinition, type RunnerInstance } from "../runner.js";

// RFC 9110 token.
const METHOD_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function decode<D extends DescMessage>(schema: D, bytes: Uint8Array, what: string): MessageShape<D> {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid ${what}: ${(e as Error).message}`);
  }
}

function parseBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RunnerError("FATAL_ERROR", `base_url is not a valid URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new RunnerError("FATAL_ERROR", `base_url must be http(s): ${raw}`);
  }
  return url;
}

/** base_url + path with exactly one slash between them; a query in `path` and `queries` are appended. */
export function buildUrl(base: URL, path: string, queries: { key: string; value: string }[]): URL {
  const url = new URL(base);
  const q = path.indexOf("?");
  const p = q < 0 ? path : path.slice(0, q);
  if (p) url.pathname = `${url.pathname.replace(/\/+$/, "")}/${p.replace(/^\/+/, "")}`;
  if (q >= 0) for (const [k, v] of new URLSearchParams(path.slice(q + 1))) url.searchParams.append(k, v);
  for (const { key, value } of queries) url.searchParams.append(key, value);
  return url;
}

function buildRequest(base: URL, a: HttpRequestArgs, signal: AbortSignal): [URL, RequestInit] {
  const method = (a.method || "GET").toUpperCase();
  if (!METHOD_RE.test(method)) throw new RunnerError("FATAL_ERROR", `invalid HTTP method: ${JSON.stringify(a.method)}`);
  const headers = new Headers();
  try {
    for (const { key, value } of a.headers) headers.append(key, value);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid header: ${(e as Error).message}`);
  }
  return [buildUrl(base, a.path, a.queries), { method, headers, body: a.body, signal }];
}

function responseHeaders(res: Response) {
  const headers: { key: string; value: string }[] = [];
  res.headers.forEach((value, key) => {
    if (key !== "set-cookie") headers.push({ key, value });
  });
  // forEach joins repeated set-cookie values with ", " (ambiguous with cookie dates): keep them separate.
  for (const value of res.headers.getSetCookie()) headers.push({ key: "set-cookie", value });
  return headers;
}

/** Maps fetch/body failures to runner errors; an abort rethrows the signal's reason. */
function mapError(e: unknown, signal: AbortSignal, url: URL): Error {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : new RunnerError("ERROR_AND_RETRY", "cancelled");
  if (e instanceof RunnerError) return e;
  const err = e as Error & { cause?: { code?: string; message?: string } };
  // fetch rejects with TypeError("fetch failed", {cause}) on network errors; other TypeErrors are bad requests.
  if (err.message === "fetch failed" || err.cause) {
    const cause = err.cause?.code ?? err.cause?.message ?? err.message;
    return new RunnerError("ERROR_AND_RETRY", `request to ${url.origin} failed: ${cause}`);
  }
  if (err instanceof TypeError) return new RunnerError("FATAL_ERROR", `invalid request: ${err.message}`);
  return new RunnerError("ERROR_AND_RETRY", `request to ${url.origin} failed: ${err.message}`);
}

const encode = (r: MessageInitShape<typeof HttpResponseResultSchema>) =>
  toBinary(HttpResponseResultSchema, create(HttpResponseResultSchema, r));

/** A stream as one result: status and headers from the first chunk, the body pieces joined (as `content` when UTF-8). */
export function collectHttpStream(chunks: Uint8Array[]): Uint8Array {
  const parts = chunks.map((c) => fromBinary(HttpResponseResultSchema, c));
  const body = Buffer.concat(parts.map((p) => (p.responseData.case === "chunk" ? p.responseData.value : new Uint8Array())));
  let text: string | undefined;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    text = undefined; // not text: keep the raw bytes
  }
  return encode({
    statusCode: parts[0]?.statusCode ?? 0,
    headers: parts[0]?.headers ?? [],
    responseData: text === undefined ? { case: "chunk", value: body } : { case: "content", value: text },
  });
}

class HttpRequestInstance implements RunnerInstance {
  constructor(private readonly base: URL) {}

  async run(bytes: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
    const [url, init] = buildRequest(this.base, decode(HttpRequestArgsSchema, bytes, "HttpRequestArgs"), ctx.signal);
    try {
      const res = await fetch(url, init);
      const content = await res.text();
      return encode({
        statusCode: res.status,
        headers: responseHeaders(res),
        responseData: { case: "content", value: content },
      });
    } catch (e) {
      throw mapError(e, ctx.signal, url);
    }
  }

  /** First chunk: status and headers; then one chunk per body read. */
  async *runStream(bytes: Uint8Array, ctx: RunContext): AsyncGenerator<Uint8Array> {
    const [url, init] = buildRequest(this.base, decode(HttpRequestArgsSchema, bytes, "HttpRequestArgs"), ctx.signal);
    let res: Response;
    try {
      res = await fetch(url, init);
    } catch (e) {
      throw mapError(e, ctx.signal, url);
    }
    const reader = res.body?.getReader();
    let done = !reader;
    try {
      yield encode({ statusCode: res.status, headers: responseHeaders(res) });
      while (reader) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (e) {
          throw mapError(e, ctx.signal, url);
        }
        if (r.done) {
          done = true;
          break;
        }
        yield encode({ responseData: { case: "chunk", value: r.value } });
      }
    } finally {
      // Consumer stopped early: release the connection.
      if (!done) await reader?.cancel().catch(() => {});
    }
  }
}

export const httpRequestRunner: RunnerDefinition = {
  id: 2n,
  name: "HTTP_REQUEST",
  description: "Sends an HTTP request to the worker's base_url joined with the job's path; returns status, headers and body.",
  runnerType: RunnerType.HTTP_REQUEST,
  settingsProto: protoText("jobworkerp/runner/http_request_settings.proto"),
  settingsSchema: HttpRequestRunnerSettingsSchema,
  methods: {
    run: {
      argsProto: protoText("jobworkerp/runner/http_request_args.proto"),
      resultProto: protoText("jobworkerp/runner/http_response_result.proto"),
      argsSchema: HttpRequestArgsSchema,
      resultSchema: HttpResponseResultSchema,
      description: "Send the request; streaming emits status and headers first, then body chunks.",
      outputType: StreamingOutputType.BOTH,
      collectStream: collectHttpStream,
    },
  },
  async create(settings: Uint8Array) {
    const s = decode(HttpRequestRunnerSettingsSchema, settings, "HttpRequestRunnerSettings");
    return new HttpRequestInstance(parseBaseUrl(s.baseUrl));
  },
};
