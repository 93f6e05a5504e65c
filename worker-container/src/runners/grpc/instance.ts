// One GRPC runner instance: a channel to the worker's target plus cached schemas; runs unary and
// server-streaming calls for jobs.
//
// When a job fails (and when a status is just reported), as jobworkerp-rs does:
// - A status the server answered with, OK or not, is the job's result: code, message and metadata in
//   GrpcUnaryResult / GrpcStreamingResult, job status SUCCESS. Callers check `code`.
// - The job fails with ERROR_AND_RETRY (retried per the worker's policy) when no answer came: the target cannot
//   be reached (UNAVAILABLE raised by the client itself, connection_timeout) or the call's timeout passed
//   (DEADLINE_EXCEEDED); the message names the status and its details.
// - It fails with FATAL_ERROR for bad settings/args: invalid method name, json_body without a schema, JSON that
//   does not match the request type, a method the schema does not have, no reflection service on the server.
import { create, fromBinary, toBinary, type DescMethod, type FileRegistry } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GrpcArgsSchema, type GrpcArgs } from "../../gen/jobworkerp/runner/grpc/args_pb.js";
import { GrpcStreamingResultSchema } from "../../gen/jobworkerp/runner/grpc/streaming_result_pb.js";
import { GrpcUnaryResultSchema } from "../../gen/jobworkerp/runner/grpc/unary_result_pb.js";
import { RunnerError, type RunContext, type RunnerInstance } from "../runner.js";
import { awaitConnection, type Target } from "./connection.js";
import { parseMethodName, type MethodName } from "./method_name.js";
import { serverStreamCall, unaryCall, type CallEnd, type CallSpec } from "./raw_call.js";
import { findMethod, jsonToRequest, responseToJson, type SchemaCache } from "./schemas.js";

type Mode = "unary" | "streaming";

interface Plan {
  name: MethodName;
  spec: CallSpec;
  timeoutMs: number | undefined;
  /** Present when the response is to be returned as JSON. */
  json?: { method: DescMethod; registry: FileRegistry };
}

/** Status details raised by grpc-js itself when it never reached the server. */
const LOCAL_UNAVAILABLE = /^(No connection established|Name resolution failed|Channel closed before call started|Connection dropped|failed to connect)/i;

const isServiceError = (e: unknown): e is grpc.ServiceError => typeof (e as grpc.ServiceError)?.code === "number";
const statusText = (code: number, details: string) => `${grpc.status[code] ?? code}${details ? `: ${details}` : ""}`;

export class GrpcInstance implements RunnerInstance {
  constructor(
    private readonly target: Target,
    private readonly client: grpc.Client,
    private readonly schemas: SchemaCache,
  ) {}

  async run(bytes: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
    const mode = modeOf(ctx.using);
    const plan = await this.plan(bytes, ctx, mode);
    if (mode === "unary") {
      const end = await unaryCall(this.client, plan.spec);
      this.throwIfFailed(end, plan, ctx.signal);
      const ok = end.code === grpc.status.OK;
      return toBinary(
        GrpcUnaryResultSchema,
        create(GrpcUnaryResultSchema, {
          metadata: end.metadata,
          code: end.code,
          message: ok ? undefined : end.details,
          responseData: ok
            ? plan.json
              ? { case: "jsonBody", value: responseToJson(plan.json.method, plan.json.registry, end.body ?? new Uint8Array()) }
              : { case: "body", value: end.body ?? new Uint8Array() }
            : errorDetails(end),
        }),
      );
    }
    const items: Uint8Array[] = [];
    for await (const e of serverStreamCall(this.client, plan.spec)) {
      if ("message" in e) {
        items.push(e.message);
        continue;
      }
      this.throwIfFailed(e.end, plan, ctx.signal);
      const json = plan.json;
      return toBinary(
        GrpcStreamingResultSchema,
        create(GrpcStreamingResultSchema, {
          metadata: e.end.metadata,
          code: e.end.code,
          message: e.end.code === grpc.status.OK ? undefined : e.end.details,
          responseData: json
            ? { case: "jsonBody", value: `[${items.map((b) => responseToJson(json.method, json.registry, b)).join(",")}]` }
            : { case: "bodies", value: { items } },
        }),
      );
    }
    throw new RunnerError("OTHER_ERROR", "gRPC stream ended without a status");
  }

  /** One GrpcStreamingResult per response message, then one with code, message and metadata. */
  async *runStream(bytes: Uint8Array, ctx: RunContext): AsyncGenerator<Uint8Array> {
    if (modeOf(ctx.using) !== "streaming") {
      throw new RunnerError("FATAL_ERROR", `method '${ctx.using}' does not stream; use 'streaming'`);
    }
    const plan = await this.plan(bytes, ctx, "streaming");
    const json = plan.json;
    for await (const e of serverStreamCall(this.client, plan.spec)) {
      if ("message" in e) {
        yield toBinary(
          GrpcStreamingResultSchema,
          create(GrpcStreamingResultSchema, {
            responseData: json
              ? { case: "jsonBody", value: responseToJson(json.method, json.registry, e.message) }
              : { case: "bodies", value: { items: [e.message] } },
          }),
        );
        continue;
      }
      this.throwIfFailed(e.end, plan, ctx.signal);
      yield toBinary(
        GrpcStreamingResultSchema,
        create(GrpcStreamingResultSchema, {
          metadata: e.end.metadata,
          code: e.end.code,
          message: e.end.code === grpc.status.OK ? undefined : e.end.details,
        }),
      );
      return;
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }

  /** Validates the args and resolves method, metadata, deadline, request bytes and (for JSON) the schema. */
  private async plan(bytes: Uint8Array, ctx: RunContext, mode: Mode): Promise<Plan> {
    const s = this.target.settings;
    const a = decodeArgs(bytes);
    const rawMethod = a.method || s.method;
    if (!rawMethod) throw new RunnerError("FATAL_ERROR", "no gRPC method: set GrpcArgs.method or GrpcRunnerSettings.method");
    const name = parseMethodName(rawMethod);
    const timeoutMs = a.timeout || s.timeout || undefined;
    const deadline = timeoutMs ? Date.now() + timeoutMs : undefined;
    const metadata = this.metadata(a);
    const asJson = a.asJson ?? s.asJson ?? false;
    const wantsSchema = asJson || a.request.case === "jsonBody";

    if (s.connectionTimeout) await awaitConnection(this.client, this.target.address, s.connectionTimeout, ctx.signal);
    abortCheck(ctx.signal);

    let schema: { method: DescMethod; registry: FileRegistry } | undefined;
    if (wantsSchema) {
      const source = a.proto ?? s.proto;
      const origin = source?.source.trim() ? "proto source" : "reflection";
      let registry: FileRegistry | undefined;
      try {
        registry = await this.schemas.registry(name, source, {
          client: s.useReflection ? this.client : undefined,
          metadata,
          deadline,
          signal: ctx.signal,
        });
      } catch (e) {
        throw this.schemaError(e, ctx.signal);
      }
      if (!registry) {
        const what = a.request.case === "jsonBody" ? "json_body" : "as_json";
        throw new RunnerError("FATAL_ERROR", `${what} needs the method's schema: set use_reflection or a proto source`);
      }
      const method = findMethod(registry, name, origin);
      const expected = mode === "unary" ? "unary" : "server_streaming";
      if (method.methodKind !== expected) {
        throw new RunnerError("FATAL_ERROR", `${name.path} is a ${method.methodKind.replace("_", "-")} method; the '${mode}' method calls ${expected.replace("_", "-")} methods`);
      }
      schema = { method, registry };
    }

    const request =
      a.request.case === "body" ? a.request.value : a.request.case === "jsonBody" ? jsonToRequest(schema!.method, schema!.registry, a.request.value) : new Uint8Array();
    return { name, timeoutMs, spec: { path: name.path, request, metadata, deadline, signal: ctx.signal }, json: asJson ? schema : undefined };
  }

  /** Settings metadata, then the job's (same key: the job wins), then the bearer token. */
  private metadata(a: GrpcArgs): grpc.Metadata {
    const s = this.target.settings;
    const md = new grpc.Metadata();
    try {
      for (const [k, v] of [...Object.entries(s.metadata), ...Object.entries(a.metadata)]) {
        md.set(k, k.toLowerCase().endsWith("-bin") ? Buffer.from(v, "base64") : v);
      }
      if (s.authToken) md.set("authorization", `Bearer ${s.authToken}`);
    } catch (e) {
      throw new RunnerError("FATAL_ERROR", `invalid metadata: ${(e as Error).message}`);
    }
    return md;
  }

  /** Turns the end of a call into a job failure where no answer came from the server (see the file comment). */
  private throwIfFailed(end: CallEnd, plan: Plan, signal: AbortSignal): void {
    abortCheck(signal);
    if (end.code === grpc.status.UNAVAILABLE && LOCAL_UNAVAILABLE.test(end.details)) {
      throw new RunnerError("ERROR_AND_RETRY", `cannot connect to ${this.target.address}: ${statusText(end.code, end.details)}`);
    }
    if (end.code === grpc.status.DEADLINE_EXCEEDED && plan.spec.deadline !== undefined && Date.now() >= plan.spec.deadline - 10) {
      throw new RunnerError("ERROR_AND_RETRY", `${plan.name.path} timed out after ${plan.timeoutMs} ms (${statusText(end.code, end.details)})`);
    }
  }

  private schemaError(e: unknown, signal: AbortSignal): Error {
    abortCheck(signal);
    if (!isServiceError(e)) return e instanceof Error ? e : new RunnerError("OTHER_ERROR", String(e));
    const text = `reflection on ${this.target.address} failed: ${statusText(e.code, e.details)}`;
    switch (e.code) {
      case grpc.status.UNIMPLEMENTED:
        return new RunnerError("FATAL_ERROR", `${this.target.address} has no reflection service (${statusText(e.code, e.details)}); give a proto source instead`);
      case grpc.status.UNAVAILABLE:
      case grpc.status.DEADLINE_EXCEEDED:
      case grpc.status.RESOURCE_EXHAUSTED:
      case grpc.status.ABORTED:
        return new RunnerError("ERROR_AND_RETRY", text);
      default:
        return new RunnerError("FATAL_ERROR", text);
    }
  }
}

function modeOf(using: string): Mode {
  if (using === "streaming") return "streaming";
  if (using === "unary" || using === "run" || using === "") return "unary";
  throw new RunnerError("FATAL_ERROR", `unknown method '${using}' (methods: unary, streaming)`);
}

function decodeArgs(bytes: Uint8Array): GrpcArgs {
  try {
    return fromBinary(GrpcArgsSchema, bytes);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid GrpcArgs: ${(e as Error).message}`);
  }
}

/** A job that was cancelled or timed out fails with the signal's reason, whatever the call reported. */
function abortCheck(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new RunnerError("ERROR_AND_RETRY", "cancelled");
}

/** Like jobworkerp-rs, a failed unary call carries the status details (grpc-status-details-bin) as its body. */
function errorDetails(end: CallEnd): { case: "body"; value: Uint8Array } | undefined {
  const b64 = end.metadata["grpc-status-details-bin"];
  return b64 ? { case: "body", value: Buffer.from(b64, "base64") } : undefined;
}
