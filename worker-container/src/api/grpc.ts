// Mounts transport-agnostic service handlers on a grpc-js server: protobuf-es codecs, auth, error mapping,
// request headers → job metadata, client cancellation → AbortSignal, stream back-pressure.
import { create, fromBinary, toBinary, type DescMessage, type DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { timingSafeEqual } from "node:crypto";
import type { Readable } from "node:stream";
import { AppError } from "../core/errors.js";
import type { CallContext } from "./context.js";
import { grpcCode } from "./errors.js";

export interface MountOptions {
  /** When set, every call must carry `jobworkerp-auth: <token>`. */
  authToken?: string;
  /** Unexpected (non-AppError) failures are reported here and answered with INTERNAL. */
  onInternalError: (e: unknown, method: string) => void;
}

/** A request that failed to decode: answered with INVALID_ARGUMENT instead of grpc-js's INTERNAL. */
class Undecodable {
  constructor(readonly message: string) {}
}

// Transport headers that are not user metadata.
const TRANSPORT_HEADERS = new Set(["user-agent", "content-type", "content-length", "te", "accept-encoding", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout", "authorization"]);

function userMetadata(md: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(md.getMap())) {
    if (key.startsWith("jobworkerp-") || key.startsWith("grpc-") || key.startsWith(":") || key.endsWith("-bin")) continue;
    if (TRANSPORT_HEADERS.has(key)) continue;
    out[key] = String(value);
  }
  return out;
}

function checkAuth(md: grpc.Metadata, token: string | undefined): void {
  if (!token) return;
  const given = md.get("jobworkerp-auth")[0];
  if (given === undefined) throw new AppError("UNAUTHENTICATED", "Missing auth token (header jobworkerp-auth)");
  const a = Buffer.from(String(given));
  const b = Buffer.from(token);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new AppError("UNAUTHENTICATED", "Invalid auth token");
}

function toStatus(e: unknown, method: string, opts: MountOptions): Partial<grpc.StatusObject> {
  if (e instanceof AppError) {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(e.trailers)) metadata.set(k, Buffer.from(v));
    return { code: grpcCode[e.kind], details: e.message, metadata };
  }
  opts.onInternalError(e, method);
  return { code: grpc.status.INTERNAL, details: `internal error: ${e instanceof Error ? e.message : String(e)}` };
}

function headersMetadata(headers: Record<string, Uint8Array | string>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, typeof v === "string" ? v : Buffer.from(v));
  return md;
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown>;

function callContext(call: AnyCall): [CallContext, () => void] {
  const controller = new AbortController();
  const abort = () => controller.abort();
  call.on("cancelled", abort);
  let headersSent = false;
  return [
    {
      metadata: userMetadata(call.metadata),
      signal: controller.signal,
      sendHeaders(headers) {
        if (headersSent) return;
        headersSent = true;
        call.sendMetadata(headersMetadata(headers));
      },
    },
    () => call.removeListener("cancelled", abort),
  ];
}

async function writeAll(call: grpc.ServerWritableStream<unknown, unknown>, items: AsyncIterable<unknown>, signal: AbortSignal) {
  for await (const item of items) {
    if (signal.aborted || call.cancelled) break;
    if (!call.write(item)) await new Promise<void>((resolve) => {
      const done = () => {
        call.removeListener("drain", done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      call.once("drain", done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHandler = (req: any, ctx: CallContext) => any;

export function mountService(server: grpc.Server, service: DescService, impl: Record<string, AnyHandler>, opts: MountOptions): void {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const m of service.methods) {
    const fn = impl[m.localName];
    if (!fn) throw new Error(`no handler for ${service.typeName}.${m.name}`);
    const input: DescMessage = m.input;
    const output: DescMessage = m.output;
    const path = `/${service.typeName}/${m.name}`;
    definition[m.name] = {
      path,
      requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
      responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      requestSerialize: (msg: unknown) => Buffer.from(toBinary(input, msg as never)),
      requestDeserialize: (buf: Buffer) => {
        try {
          return fromBinary(input, buf);
        } catch (e) {
          return new Undecodable(`malformed ${input.typeName}: ${(e as Error).message}`);
        }
      },
      responseSerialize: (msg: unknown) => Buffer.from(toBinary(output, create(output, msg as never))),
      responseDeserialize: (buf: Buffer) => fromBinary(output, buf),
    };
    const checkRequest = (call: AnyCall, req: unknown) => {
      checkAuth(call.metadata, opts.authToken);
      if (req instanceof Undecodable) throw new AppError("INVALID_ARGUMENT", req.message);
    };

    if (m.methodKind === "unary") {
      handlers[m.name] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const [ctx, release] = callContext(call);
        (async () => {
          checkRequest(call, call.request);
          return fn(call.request, ctx);
        })().then(
          (res) => callback(null, res),
          (e) => callback(toStatus(e, path, opts)),
        ).finally(release);
      };
    } else if (m.methodKind === "server_streaming") {
      handlers[m.name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const [ctx, release] = callContext(call as unknown as AnyCall);
        (async () => {
          checkRequest(call as unknown as AnyCall, call.request);
          await writeAll(call, fn(call.request, ctx), ctx.signal);
        })().then(
          () => call.end(),
          (e) => call.emit("error", toStatus(e, path, opts)),
        ).finally(release);
      };
    } else {
      handlers[m.name] = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        const [ctx, release] = callContext(call as unknown as AnyCall);
        async function* requests() {
          // leaving the loop early (a handler rejecting the first message) must not destroy the call,
          // or the error status below would never reach the client
          for await (const req of (call as unknown as Readable).iterator({ destroyOnReturn: false })) {
            checkRequest(call as unknown as AnyCall, req);
            yield req;
          }
        }
        (async () => {
          checkAuth(call.metadata, opts.authToken);
          await writeAll(call as unknown as grpc.ServerWritableStream<unknown, unknown>, fn(requests(), ctx), ctx.signal);
        })().then(
          () => call.end(),
          (e) => call.emit("error", toStatus(e, path, opts)),
        ).finally(release);
      };
    }
  }
  server.addService(definition as grpc.ServiceDefinition, handlers);
}
