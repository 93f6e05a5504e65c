// The one Runner interface every runner implements (COMMAND, HTTP_REQUEST, and later DOCKER, LLM, MCP, WORKFLOW...).
//
// A RunnerDefinition describes a runner type: its protos (served through RunnerService so clients can
// encode settings and args) and a factory that turns a worker's settings into a RunnerInstance.
// An instance runs jobs: `run` returns one encoded result message; `runStream` yields encoded result
// messages as chunks (each chunk is a complete message of the method's result type).
import type { DescMessage } from "@bufbuild/protobuf";
import type { RunnerType } from "../gen/jobworkerp/data/common_pb.js";
import type { StreamingOutputType } from "../gen/jobworkerp/data/runner_pb.js";

export interface MethodDefinition {
  /** .proto source text of the args message (self-contained, no imports). */
  argsProto: string;
  /** .proto source text of the result message. */
  resultProto: string;
  argsSchema: DescMessage;
  resultSchema: DescMessage;
  description?: string;
  outputType: StreamingOutputType;
  requireClientStream?: boolean;
  /** Args may also be UTF-8 JSON object text instead of an args message (MCP tools, as jobworkerp-rs allows). */
  acceptsJsonArgs?: boolean;
  /** Reduces a streamed run's chunks to one result message (a workflow's `useStreaming` task); default: the last chunk. */
  collectStream?(chunks: Uint8Array[]): Uint8Array;
}

export interface RunnerDefinition {
  /** Fixed id of a built-in runner (jobworkerp's runner table ids). */
  id: bigint;
  name: string;
  description: string;
  runnerType: RunnerType;
  /** .proto source text of the settings message ("" when the runner takes no settings). */
  settingsProto: string;
  settingsSchema?: DescMessage;
  /** Method name → schema; single-method runners use "run". */
  methods: Record<string, MethodDefinition>;
  /** The method a job without `using` runs, for runners with several (GRPC: unary); none means `using` is required. */
  defaultMethod?: string;
  /**
   * Validate settings and build an instance. Throws RunnerError("FATAL_ERROR") for bad settings.
   * Called once per job, or once per pool slot when the worker has use_static.
   */
  create(settings: Uint8Array, opts?: CreateOptions): Promise<RunnerInstance>;
  /** Checks settings beyond decoding them when a worker is created or updated: a problem's message, or undefined. */
  checkSettings?(settings: Uint8Array): string | undefined;
}

export interface CreateOptions {
  /** The instance will be reused for many jobs (use_static) rather than closed after one (e.g. DOCKER keeps a container). */
  useStatic: boolean;
  /** The worker the instance serves (runners that keep per-worker state, e.g. SUPERVISED_PROCESS's children). */
  worker?: { id: bigint; name: string };
}

export interface RunContext {
  /** Aborted on timeout or cancellation; runners must stop promptly and clean up (kill processes, close sockets). */
  signal: AbortSignal;
  /** Method name (already defaulted to the runner's only method). */
  using: string;
  jobId: bigint;
  /** Job metadata (request headers that are not jobworkerp's own). */
  metadata: Record<string, string>;
  /** Retries already made of this job, the retry policy's limit (0: none) and the channel it runs on. */
  retried?: number;
  maxRetry?: number;
  channel?: string;
}

export interface RunnerInstance {
  /** Run once; resolves to the encoded result message of the method. */
  run(args: Uint8Array, ctx: RunContext): Promise<Uint8Array>;
  /** Run with streaming output; present when some method's outputType is STREAMING or BOTH. */
  runStream?(args: Uint8Array, ctx: RunContext): AsyncIterable<Uint8Array>;
  /** Release resources (static pools call it on release/shutdown). */
  close?(): Promise<void>;
  /** The instance cleans up after an aborted run itself and stays usable (a static pool keeps it). */
  recoversFromAbort?: boolean;
}

/**
 * How a run failed, using jobworkerp's ResultStatus names.
 * ERROR_AND_RETRY: retried per the retry policy (e.g. timeout, non-zero exit treated as error, HTTP connection failure).
 * FATAL_ERROR: never retried (bad settings/args).
 * OTHER_ERROR: unexpected failure, not retried.
 */
export type RunnerErrorKind = "ERROR_AND_RETRY" | "FATAL_ERROR" | "OTHER_ERROR";

export class RunnerError extends Error {
  constructor(
    readonly kind: RunnerErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "RunnerError";
  }
}
