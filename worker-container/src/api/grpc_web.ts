// gRPC-Web over HTTP/1.1 for browsers (jobworkerp's admin UI): the same transport-agnostic handlers grpc-js
// mounts, answered in `application/grpc-web(+proto)` or base64 `application/grpc-web-text(+proto)`.
// Unary and server-streaming methods only: gRPC-Web has no client streaming, so those answer UNIMPLEMENTED.
import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { status as Status } from "@grpc/grpc-js";
import { timingSafeEqual } from "node:crypto";
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import { AppError } from "../core/errors.js";
import type { CallContext } from "./context.js";
import { grpcCode } from "./errors.js";
import type { MountOptions } from "./grpc.js";
import { CorsPolicy } from "./grpc_web_cors.js";
import {
  COMPRESSED_FLAG,
  DATA_FLAG,
  FRAME_HEADER_BYTES,
  FramingError,
  decodeBase64Body,
  decodeFrames,
  encodeFrame,
  encodeTrailerFrame,
  parseGrpcTimeout,
  percentEncode,
} from "./grpc_web_framing.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHandler = (req: any, ctx: CallContext) => any;

export interface WebServiceEntry {
  service: DescService;
  impl: Record<string, AnyHandler>;
}

export interface GrpcWebOptions extends MountOptions {
  /** Largest request message accepted (as grpc.max_receive_message_length for gRPC). */
  maxMessageBytes: number;
  /** CORS: origins allowed to call (`*` for any). */
  allowedOrigins: readonly string[];
}

const CONTENT_TYPE = /^application\/grpc-web(-text)?(?:\+proto)?\s*(?:;.*)?$/i;

// HTTP/1.1 and browser headers that are not user metadata (grpc.ts skips the HTTP/2 transport ones likewise).
const TRANSPORT_HEADERS = new Set([
  "host", "connection", "keep-alive", "transfer-encoding", "upgrade", "te", "content-type", "content-length",
  "accept", "accept-encoding", "accept-language", "user-agent", "x-user-agent", "x-grpc-web", "origin", "referer",
  "cookie", "authorization", "cache-control", "pragma", "dnt", "priority",
]);
const SKIPPED_PREFIXES = ["jobworkerp-", "grpc-", "sec-", "access-control-", "proxy-"];

function userMetadata(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined || TRANSPORT_HEADERS.has(key) || key.endsWith("-bin")) continue;
    if (SKIPPED_PREFIXES.some((p) => key.startsWith(p))) continue;
    out[key] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function checkAuth(req: IncomingMessage, token: string | undefined): void {
  if (!token) return;
  const given = req.headers["jobworkerp-auth"];
  if (given === undefined) throw new AppError("UNAUTHENTICATED", "Missing auth token (header jobworkerp-auth)");
  const a = Buffer.from(Array.isArray(given) ? given[0] : given);
  const b = Buffer.from(token);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new AppError("UNAUTHENTICATED", "Invalid auth token");
}

/** Metadata values as HTTP/1 header values: binary (-bin) ones base64-encoded, as gRPC-Web clients expect. */
function headerValues(headers: Record<string, Uint8Array | string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = typeof v === "string" ? v : Buffer.from(v).toString("base64");
  return out;
}

interface CallStatus {
  code: Status;
  message: string;
  trailers?: Record<string, string>;
}

/** One call's response: headers once, then frames, then the status (a trailer frame, or headers only). */
class WebResponse {
  private started = false;
  finished = false;
  private readonly headers: Record<string, string> = {};

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    readonly text: boolean,
    private readonly cors: CorsPolicy,
  ) {}

  addHeaders(h: Record<string, Uint8Array | string>): void {
    if (!this.started) Object.assign(this.headers, headerValues(h));
  }

  private baseHeaders(extra: Record<string, string>): OutgoingHttpHeaders {
    const all = { ...this.headers, ...extra };
    return {
      "content-type": this.text ? "application/grpc-web-text+proto" : "application/grpc-web+proto",
      "cache-control": "no-cache",
      ...this.cors.responseHeaders(this.req, Object.keys(all)),
      ...all,
    };
  }

  /** Sends the headers now (otherwise they go with the first message, or with the status). */
  start(): void {
    if (this.started || this.finished) return;
    this.started = true;
    this.res.writeHead(200, this.baseHeaders({}));
    this.res.flushHeaders();
  }

  private body(frame: Buffer): Buffer {
    return this.text ? Buffer.from(frame.toString("base64"), "latin1") : frame;
  }

  /** Writes one message; false when the socket's buffer is full (wait for drain). */
  message(bytes: Uint8Array): boolean {
    if (this.finished || this.res.destroyed) return false;
    this.start();
    return this.res.write(this.body(encodeFrame(DATA_FLAG, bytes)));
  }

  finish(st: CallStatus): void {
    if (this.finished) return;
    this.finished = true;
    const statusFields = { "grpc-status": String(st.code), "grpc-message": percentEncode(st.message), ...st.trailers };
    if (this.res.destroyed) return;
    if (!this.started) {
      // trailers-only: the status travels in the headers and the body is empty
      this.started = true;
      this.res.writeHead(200, this.baseHeaders(statusFields));
      this.res.end();
      return;
    }
    this.res.end(this.body(encodeTrailerFrame(statusFields)));
  }

  waitDrain(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.res.removeListener("drain", done);
        this.res.removeListener("close", done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.res.once("drain", done);
      this.res.once("close", done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}

class BodyTooLarge extends Error {}

/** Reads the whole request body, giving up once it exceeds `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeListener("data", onData);
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
    // a client gone mid-body sends no 'end' (rejecting after 'end' resolved is a no-op)
    req.once("close", () => reject(new Error("request aborted")));
  });
}

interface Route {
  path: string;
  method: DescMethod;
  fn: AnyHandler;
}

export class GrpcWebFront {
  /** The HTTP/1.1 server; connections are handed to it (shared port) or it listens itself. */
  readonly http: http.Server;
  private readonly routes = new Map<string, Route>();
  private readonly cors: CorsPolicy;
  private readonly open = new Set<{ abort(reason: CallStatus): void; done: Promise<void> }>();

  constructor(services: WebServiceEntry[], private readonly opts: GrpcWebOptions) {
    for (const { service, impl } of services) {
      for (const m of service.methods) {
        const fn = impl[m.localName];
        if (!fn) throw new Error(`no handler for ${service.typeName}.${m.name}`);
        const path = `/${service.typeName}/${m.name}`;
        this.routes.set(path, { path, method: m, fn });
      }
    }
    this.cors = new CorsPolicy(opts.allowedOrigins);
    this.http = http.createServer((req, res) => this.handle(req, res));
    // streams (ListenStream, FindList) may stay quiet for long: no request/idle timeouts of Node's own
    this.http.requestTimeout = 0;
    this.http.headersTimeout = 60_000;
    this.http.keepAliveTimeout = 30_000;
  }

  /** Lets open calls finish for up to `graceMs`, then ends them with UNAVAILABLE and closes every connection. */
  async close(graceMs: number): Promise<void> {
    this.http.close();
    this.http.closeIdleConnections();
    if (this.open.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
      await Promise.race([Promise.all([...this.open].map((c) => c.done)), graceOver]);
      clearTimeout(timer);
      for (const c of this.open) c.abort({ code: Status.UNAVAILABLE, message: "server shutting down" });
    }
    this.http.closeAllConnections();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === "OPTIONS") {
      if (!this.cors.allows(req)) return void res.writeHead(403).end();
      return void res.writeHead(204, this.cors.preflightHeaders(req)).end();
    }
    if (req.method !== "POST") {
      return void res.writeHead(405, { allow: "POST, OPTIONS", "content-type": "text/plain" }).end("gRPC-Web endpoint: POST only\n");
    }
    if (!this.cors.allows(req)) return void res.writeHead(403, { "content-type": "text/plain" }).end("origin not allowed\n");
    const ct = CONTENT_TYPE.exec(req.headers["content-type"] ?? "");
    if (!ct) {
      return void res
        .writeHead(415, { "content-type": "text/plain", ...this.cors.responseHeaders(req) })
        .end("expected content-type application/grpc-web[+proto] or application/grpc-web-text[+proto]\n");
    }
    const out = new WebResponse(req, res, ct[1] !== undefined, this.cors);
    const controller = new AbortController();
    let settle!: () => void;
    const entry = {
      done: new Promise<void>((r) => (settle = r)),
      abort: (st: CallStatus) => {
        out.finish(st);
        controller.abort();
      },
    };
    this.open.add(entry);
    // the client went away (or the server cut the call) before the status: stop the handler
    res.once("close", () => {
      if (!out.finished) {
        out.finished = true;
        controller.abort();
      }
    });
    const route = this.routes.get(req.url?.split("?")[0] ?? "");
    const method = route?.path ?? String(req.url);
    this.serve(req, out, route, controller)
      .catch((e) => out.finish(this.toStatus(e, method)))
      .catch((e) => {
        // the status itself could not be written (e.g. a header value Node refuses): drop the connection
        this.opts.onInternalError(e, method);
        res.destroy();
      })
      .finally(() => {
        this.open.delete(entry);
        settle();
        // an unread body (rejected early) must not keep the connection's parser waiting
        if (!req.complete) req.resume();
      });
  }

  private async serve(req: IncomingMessage, out: WebResponse, route: Route | undefined, controller: AbortController): Promise<void> {
    if (!route) throw new AppError("UNIMPLEMENTED", `unknown method ${req.url}`);
    const kind = route.method.methodKind;
    if (kind !== "unary" && kind !== "server_streaming") {
      throw new AppError("UNIMPLEMENTED", `${route.path} is ${kind.replace("_", "-")}, which gRPC-Web cannot carry; use gRPC`);
    }
    checkAuth(req, this.opts.authToken);

    const timeoutMs = parseGrpcTimeout(req.headers["grpc-timeout"] as string | undefined);
    if (timeoutMs === null) throw new AppError("INVALID_ARGUMENT", `malformed grpc-timeout '${req.headers["grpc-timeout"]}'`);
    const deadline = timeoutMs === undefined ? undefined : setTimeout(() => {
      out.finish({ code: Status.DEADLINE_EXCEEDED, message: "Deadline exceeded" });
      controller.abort();
    }, timeoutMs);
    try {
      const request = await this.readRequest(req, route.method.input, out);
      const ctx: CallContext = {
        metadata: userMetadata(req),
        signal: controller.signal,
        sendHeaders: (h) => {
          out.addHeaders(h);
          // a stream's headers (x-job-id-bin) go out at once, as grpc-js does, before any message or status
          if (kind === "server_streaming") out.start();
        },
      };
      const output: DescMessage = route.method.output;
      const encode = (msg: unknown) => toBinary(output, create(output, msg as never));
      if (kind === "unary") {
        const res = await route.fn(request, ctx);
        if (out.finished) return;
        out.message(encode(res));
      } else {
        const items: AsyncIterable<unknown> = route.fn(request, ctx);
        for await (const item of items) {
          if (out.finished || controller.signal.aborted) break;
          if (!out.message(encode(item))) await out.waitDrain(controller.signal);
        }
      }
      out.finish({ code: Status.OK, message: "" });
    } finally {
      clearTimeout(deadline);
    }
  }

  private async readRequest(req: IncomingMessage, input: DescMessage, out: WebResponse): Promise<unknown> {
    const text = out.text;
    const maxFrame = this.opts.maxMessageBytes + FRAME_HEADER_BYTES;
    // base64 grows 4/3, plus room for per-chunk padding and line breaks
    const limit = text ? Math.ceil(maxFrame / 3) * 4 + 1024 : maxFrame;
    let raw: Buffer;
    try {
      raw = await readBody(req, limit);
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        throw new AppError("RESOURCE_EXHAUSTED", `request larger than the limit of ${this.opts.maxMessageBytes} bytes (GRPC_MAX_MESSAGE_BYTES)`);
      }
      throw new AppError("CANCELLED", "request body not received");
    }
    try {
      const frames = decodeFrames(text ? decodeBase64Body(raw.toString("latin1")) : raw);
      if (frames.length !== 1) throw new FramingError(`expected exactly one request message, got ${frames.length} frames`);
      const [frame] = frames;
      if (frame.flag === COMPRESSED_FLAG) throw new AppError("UNIMPLEMENTED", "compressed messages are not supported (send grpc-encoding identity)");
      if (frame.flag !== DATA_FLAG) throw new FramingError(`unexpected frame flag 0x${frame.flag.toString(16)}`);
      if (frame.payload.length > this.opts.maxMessageBytes) {
        throw new AppError("RESOURCE_EXHAUSTED", `request message larger than the limit of ${this.opts.maxMessageBytes} bytes`);
      }
      return fromBinary(input, frame.payload);
    } catch (e) {
      if (e instanceof AppError) throw e;
      const what = e instanceof FramingError ? "malformed gRPC-Web body" : `malformed ${input.typeName}`;
      throw new AppError("INVALID_ARGUMENT", `${what}: ${(e as Error).message}`);
    }
  }

  private toStatus(e: unknown, path: string): CallStatus {
    if (e instanceof AppError) return { code: grpcCode[e.kind], message: e.message, trailers: headerValues(e.trailers) };
    this.opts.onInternalError(e, path);
    return { code: Status.INTERNAL, message: `internal error: ${e instanceof Error ? e.message : String(e)}` };
  }
}
