// GRPC runner (id 32770; methods "unary" and "streaming") and its deprecated alias GRPC_UNARY (id 3; method
// "run" = unary): calls a method of any gRPC server with a protobuf-encoded or JSON request. Semantics (which
// statuses fail a job) are described in instance.ts.
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import { GrpcArgsSchema } from "../../gen/jobworkerp/runner/grpc/args_pb.js";
import { GrpcRunnerSettingsSchema } from "../../gen/jobworkerp/runner/grpc/runner_pb.js";
import { GrpcStreamingResultSchema } from "../../gen/jobworkerp/runner/grpc/streaming_result_pb.js";
import { GrpcUnaryResultSchema } from "../../gen/jobworkerp/runner/grpc/unary_result_pb.js";
import { protoText } from "../proto_text.js";
import type { MethodDefinition, RunnerDefinition } from "../runner.js";
import { decodeSettings, openClient } from "./connection.js";
import { GrpcInstance } from "./instance.js";
import { SchemaCache } from "./schemas.js";

const settingsProto = () => protoText("jobworkerp/runner/grpc/runner.proto");
const argsProto = () => protoText("jobworkerp/runner/grpc/args.proto");

const unary = (): MethodDefinition => ({
  argsProto: argsProto(),
  resultProto: protoText("jobworkerp/runner/grpc/unary_result.proto"),
  argsSchema: GrpcArgsSchema,
  resultSchema: GrpcUnaryResultSchema,
  description: "Call a unary gRPC method; the result holds the status code, message, response metadata and body (or JSON).",
  outputType: StreamingOutputType.NON_STREAMING,
});

const streaming = (): MethodDefinition => ({
  argsProto: argsProto(),
  resultProto: protoText("jobworkerp/runner/grpc/streaming_result.proto"),
  argsSchema: GrpcArgsSchema,
  resultSchema: GrpcStreamingResultSchema,
  description:
    "Call a server-streaming gRPC method; streamed: one GrpcStreamingResult per response message then one with the status, otherwise all messages in one result.",
  outputType: StreamingOutputType.BOTH,
});

/** The channel is opened lazily by grpc-js on the first call; a use_static instance keeps it and its schemas. */
async function createInstance(settings: Uint8Array): Promise<GrpcInstance> {
  const target = decodeSettings(settings);
  return new GrpcInstance(target, openClient(target), new SchemaCache());
}

export const grpcRunner: RunnerDefinition = {
  id: 32770n,
  name: "GRPC",
  description: "Calls a gRPC method (unary or server streaming) on the worker's host:port, with protobuf bytes or JSON (schemas from server reflection or a .proto source).",
  runnerType: RunnerType.GRPC,
  settingsProto: settingsProto(),
  settingsSchema: GrpcRunnerSettingsSchema,
  methods: { unary: unary(), streaming: streaming() },
  defaultMethod: "unary",
  create: createInstance,
};

/** Deprecated alias kept for old clients: the GRPC runner's unary method under the single method name "run". */
export const grpcUnaryRunner: RunnerDefinition = {
  id: 3n,
  name: "GRPC_UNARY",
  description: "Deprecated: use GRPC with using = \"unary\". Calls a unary gRPC method on the worker's host:port.",
  runnerType: RunnerType.GRPC_UNARY,
  settingsProto: settingsProto(),
  settingsSchema: GrpcRunnerSettingsSchema,
  methods: { run: unary() },
  create: createInstance,
};
