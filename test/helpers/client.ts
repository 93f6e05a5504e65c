// An independent gRPC client for the e2e tests: @grpc/grpc-js + @grpc/proto-loader over proto/, and
// protobufjs for runner args/results. Nothing here imports the server's code (worker-container/).
//
// Decoded messages follow proto-loader's options (see LOADER_OPTIONS): field names as in the .proto
// (snake_case), int64/uint64 as decimal strings, enums as their names (an unknown number stays a number),
// bytes as Buffer, proto3 `optional` fields and oneof members absent when unset, everything else defaulted.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import {
  LOADER_OPTIONS,
  PROTO_DIR,
  SERVICE_PROTO_FILES,
  decodeMessage,
  encodeMessage,
  protoRoot,
} from "./protos.js";

export { grpc };
export const Status = grpc.status;
export const AUTH_HEADER = "jobworkerp-auth";
export const DEFAULT_CHANNEL = "__default_job_channel__";
export const COMMAND_RUNNER_ID = 1;
export const HTTP_REQUEST_RUNNER_ID = 2;

// ---------------------------------------------------------------------------------------------------
// Message shapes (decoded). Input shapes are loose: proto-loader accepts strings or numbers for
// 64-bit ints and names or numbers for enums.
// ---------------------------------------------------------------------------------------------------
type Long = string;
type LongIn = string | number;
type EnumIn = string | number;
export type DeepPartial<T> = T extends Buffer | Uint8Array
  ? T
  : T extends (infer U)[]
    ? DeepPartial<U>[]
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> | null }
      : T;

export interface Id {
  value: Long;
}
export interface IdIn {
  value: LongIn;
}
export interface RetryPolicy {
  type: string;
  interval: number;
  max_interval: number;
  max_retry: number;
  basis: number;
}
export interface WorkerData {
  name: string;
  description: string;
  runner_id: Id;
  runner_settings: Buffer;
  retry_policy: RetryPolicy | null;
  periodic_interval: number;
  channel?: string;
  queue_type: string;
  response_type: string;
  store_success: boolean;
  store_failure: boolean;
  use_static: boolean;
  broadcast_results: boolean;
  /** jobworkerp-ts extension (DedupMode name). */
  dedup?: string;
}
export interface Worker {
  id: Id;
  data: WorkerData;
}
export interface JobExecutionOverrides {
  response_type?: string;
  store_success?: boolean;
  store_failure?: boolean;
  broadcast_results?: boolean;
  retry_policy?: RetryPolicy;
}
export interface JobData {
  worker_id: Id;
  args: Buffer;
  uniq_key?: string;
  enqueue_time: Long;
  grabbed_until_time?: Long;
  run_after_time: Long;
  retried: number;
  priority: string;
  timeout: Long;
  using?: string;
  streaming_type: string;
  overrides?: JobExecutionOverrides;
}
export interface Job {
  id: Id;
  data: JobData;
  metadata: Record<string, string>;
}
export interface ResultOutput {
  items: Buffer;
}
export interface JobResultData {
  job_id: Id;
  worker_id: Id;
  worker_name: string;
  args: Buffer;
  uniq_key?: string;
  status: string;
  output: ResultOutput | null;
  retried: number;
  max_retry: number;
  priority: string;
  timeout: Long;
  enqueue_time: Long;
  run_after_time: Long;
  start_time: Long;
  end_time: Long;
  response_type: string;
  store_success: boolean;
  store_failure: boolean;
  using?: string;
  streaming_type: string;
  broadcast_results: boolean;
  resolved_retry_policy?: RetryPolicy;
}
export interface JobResult {
  id: Id;
  data: JobResultData;
  metadata: Record<string, string>;
}
export interface ResultOutputItem {
  data?: Buffer;
  end?: { metadata: Record<string, string> };
  final_collected?: Buffer;
  item?: "data" | "end" | "final_collected";
}
export interface MethodSchema {
  args_proto: string;
  result_proto: string;
  description?: string;
  output_type: string;
  require_client_stream: boolean;
  client_stream_data_proto?: string;
}
export interface RunnerData {
  name: string;
  description: string;
  runner_type: string;
  runner_settings_proto: string;
  definition: string;
  method_proto_map: { schemas: Record<string, MethodSchema> } | null;
}
export interface Runner {
  id: Id;
  data: RunnerData;
}
export interface JobRequest {
  worker_id?: IdIn;
  worker_name?: string;
  args?: Uint8Array;
  uniq_key?: string;
  run_after_time?: LongIn;
  priority?: EnumIn;
  timeout?: LongIn;
  using?: string;
  overrides?: DeepPartial<JobExecutionOverrides>;
}
export interface JobAndStatus {
  job: Job;
  status?: string;
}
export interface SuccessResponse {
  is_success: boolean;
}
export interface CountResponse {
  total: Long;
}
export interface ChannelInfo {
  name: string;
  concurrency: number;
  worker_count: Long;
  total_concurrency?: number;
  active_instances?: number;
}
export interface WorkerInstance {
  id: Id;
  data: {
    ip_address: string;
    hostname?: string;
    channels: { name: string; concurrency: number }[];
    registered_at: Long;
    last_heartbeat: Long;
    rdb_status_index_recovery_version: number;
  };
}
export type WorkerDataIn = DeepPartial<Omit<WorkerData, "runner_id" | "retry_policy">> & {
  runner_id?: IdIn;
  retry_policy?: DeepPartial<RetryPolicy> & { type?: EnumIn };
  response_type?: EnumIn;
  queue_type?: EnumIn;
};
type Obj = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------------
export interface CallOptions {
  /** Extra request metadata (the auth token is added unless `token` is null). */
  metadata?: grpc.Metadata;
  /** Overrides the client's default auth token for this call; null sends none. */
  token?: string | null;
  /** Deadline in ms from now. */
  timeoutMs?: number;
}

export interface UnaryResult<T> {
  response: T;
  /** Response headers. */
  headers: grpc.Metadata;
  /** Trailing metadata. */
  trailers: grpc.Metadata;
}

/** grpc-js ServiceError; `.metadata` holds the trailers, `.headers` the response headers (if any). */
export type RpcError = grpc.ServiceError & { headers?: grpc.Metadata };

export type Unary<Req, Res> = (req: Req, opts?: CallOptions) => Promise<UnaryResult<Res>>;
export type ServerStream<Req, Res> = (req: Req, opts?: CallOptions) => grpc.ClientReadableStream<Res>;
export type Bidi<Req, Res> = (opts?: CallOptions) => grpc.ClientDuplexStream<Req, Res>;

export interface WorkerServiceApi {
  Create: Unary<WorkerDataIn, { id: Id }>;
  UpsertByName: Unary<WorkerDataIn, { id: Id }>;
  Update: Unary<{ id: IdIn; data: WorkerDataIn }, SuccessResponse>;
  Delete: Unary<IdIn, SuccessResponse>;
  Find: Unary<IdIn, { data?: Worker }>;
  FindByName: Unary<{ name: string }, { data?: Worker }>;
  FindList: ServerStream<Obj, Worker>;
  Count: Unary<Obj, CountResponse>;
  CountBy: Unary<Obj, CountResponse>;
  FindChannelList: Unary<Obj, { channels: ChannelInfo[] }>;
  ReleaseStaticWorker: Unary<Obj, SuccessResponse>;
  Load: Unary<Obj, SuccessResponse>;
}
export interface JobServiceApi {
  Enqueue: Unary<JobRequest, { id: Id; result?: JobResult }>;
  EnqueueForStream: ServerStream<JobRequest, ResultOutputItem>;
  EnqueueWithClientStream: Bidi<Obj, ResultOutputItem>;
  Delete: Unary<IdIn, SuccessResponse>;
  Find: Unary<IdIn, { data?: Job }>;
  FindList: ServerStream<{ limit?: number; offset?: LongIn }, Job>;
  FindQueueList: ServerStream<{ limit?: number; channel?: string }, JobAndStatus>;
  FindListWithProcessingStatus: ServerStream<{ status: EnumIn; limit?: number }, JobAndStatus>;
  Count: Unary<Obj, CountResponse>;
}
export interface JobResultServiceApi {
  Delete: Unary<IdIn, SuccessResponse>;
  Find: Unary<IdIn, { data?: JobResult }>;
  FindList: ServerStream<Obj, JobResult>;
  FindListByJobId: ServerStream<{ job_id: IdIn }, JobResult>;
  Listen: Unary<Obj, JobResult>;
  ListenStream: ServerStream<Obj, ResultOutputItem>;
  ListenByWorker: ServerStream<Obj, JobResult>;
  Count: Unary<Obj, CountResponse>;
  FindListBy: ServerStream<Obj, JobResult>;
  CountBy: Unary<Obj, CountResponse>;
  DeleteBulk: Unary<Obj, { deleted_count: Long }>;
}
export interface RunnerServiceApi {
  Create: Unary<Obj, { id: Id }>;
  Delete: Unary<IdIn, SuccessResponse>;
  Find: Unary<IdIn, { data?: Runner }>;
  FindByName: Unary<{ name: string }, { data?: Runner }>;
  FindList: ServerStream<Obj, Runner>;
  Count: Unary<Obj, CountResponse>;
  FindListBy: ServerStream<Obj, Runner>;
  CountBy: Unary<Obj, CountResponse>;
  RefreshMcpRunner: Unary<{ runner_id?: IdIn }, { updated_runners: string[]; failures: { runner_name: string; error_message: string }[] }>;
}
export interface JobProcessingStatusServiceApi {
  Find: Unary<IdIn, { status?: string }>;
  FindAll: ServerStream<Obj, { id: Id; status: string }>;
  FindByCondition: ServerStream<Obj, Obj>;
  CountByCondition: Unary<Obj, Obj>;
  Cleanup: Unary<Obj, Obj>;
  PurgeStaleJobs: Unary<Obj, Obj>;
}
export interface JobRestoreServiceApi {
  Restore: Unary<Obj, SuccessResponse>;
  FindAll: ServerStream<Obj, Job>;
}
export interface WorkerInstanceServiceApi {
  FindList: ServerStream<{ channel?: string; active_only?: boolean }, WorkerInstance>;
  Count: Unary<Obj, { total: Long; active: Long }>;
  Find: Unary<IdIn, WorkerInstance>;
  FindChannelList: Unary<Obj, { channels: { name: string; total_concurrency: number; active_instances: number; worker_count: Long }[] }>;
}

export const SERVICE_NAMES = [
  "WorkerService",
  "JobService",
  "JobResultService",
  "RunnerService",
  "JobProcessingStatusService",
  "JobRestoreService",
  "WorkerInstanceService",
] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

let packageDefinition: protoLoader.PackageDefinition | undefined;
export function loadPackageDefinition(): protoLoader.PackageDefinition {
  packageDefinition ??= protoLoader.loadSync(SERVICE_PROTO_FILES, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  return packageDefinition;
}

function serviceDefinition(name: ServiceName): grpc.ServiceDefinition {
  return loadPackageDefinition()[`jobworkerp.service.${name}`] as grpc.ServiceDefinition;
}

export function authMetadata(token: string, base?: grpc.Metadata): grpc.Metadata {
  const md = base ? base.clone() : new grpc.Metadata();
  md.set(AUTH_HEADER, token);
  return md;
}

export interface ApiOptions {
  /** Sent as `jobworkerp-auth` on every call unless a call says otherwise. */
  token?: string;
  /** Extra grpc-js channel options (e.g. a round-robin service config for a multi-address target). */
  channelOptions?: Record<string, string | number>;
}

/** Clients for the seven jobworkerp services against one address (or any grpc-js target). */
export class Api {
  readonly worker: WorkerServiceApi;
  readonly job: JobServiceApi;
  readonly jobResult: JobResultServiceApi;
  readonly runner: RunnerServiceApi;
  readonly jobStatus: JobProcessingStatusServiceApi;
  readonly jobRestore: JobRestoreServiceApi;
  readonly workerInstance: WorkerInstanceServiceApi;
  private readonly clients: grpc.Client[] = [];

  constructor(
    readonly address: string,
    readonly options: ApiOptions = {},
  ) {
    this.worker = this.wrap("WorkerService") as unknown as WorkerServiceApi;
    this.job = this.wrap("JobService") as unknown as JobServiceApi;
    this.jobResult = this.wrap("JobResultService") as unknown as JobResultServiceApi;
    this.runner = this.wrap("RunnerService") as unknown as RunnerServiceApi;
    this.jobStatus = this.wrap("JobProcessingStatusService") as unknown as JobProcessingStatusServiceApi;
    this.jobRestore = this.wrap("JobRestoreService") as unknown as JobRestoreServiceApi;
    this.workerInstance = this.wrap("WorkerInstanceService") as unknown as WorkerInstanceServiceApi;
  }

  /** A copy of this Api with another default token (null: none). */
  withToken(token: string | null): Api {
    return new Api(this.address, { ...this.options, token: token ?? undefined });
  }

  metadataFor(opts?: CallOptions): grpc.Metadata {
    const md = opts?.metadata ? opts.metadata.clone() : new grpc.Metadata();
    const token = opts?.token === undefined ? this.options.token : opts.token;
    if (token != null) md.set(AUTH_HEADER, token);
    return md;
  }

  callOptions(opts?: CallOptions): grpc.CallOptions {
    return opts?.timeoutMs ? { deadline: new Date(Date.now() + opts.timeoutMs) } : {};
  }

  private wrap(name: ServiceName): Record<string, unknown> {
    const def = serviceDefinition(name);
    const Ctor = grpc.makeGenericClientConstructor(def, name);
    const client = new Ctor(this.address, grpc.credentials.createInsecure(), {
      "grpc.max_send_message_length": -1,
      "grpc.max_receive_message_length": -1,
      ...this.options.channelOptions,
    });
    this.clients.push(client);
    const out: Record<string, unknown> = {};
    for (const [method, m] of Object.entries(def)) {
      const fn = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[method].bind(client);
      if (!m.requestStream && !m.responseStream) {
        out[method] = (req: unknown, opts?: CallOptions) =>
          new Promise<UnaryResult<unknown>>((resolve, reject) => {
            let headers = new grpc.Metadata();
            let response: unknown;
            let error: RpcError | null = null;
            let done = 0;
            const finish = () => {
              if (++done < 2) return;
              if (error) {
                error.headers = headers;
                reject(error);
              }
            };
            const call = fn(req, this.metadataFor(opts), this.callOptions(opts), (err: RpcError | null, res: unknown) => {
              if (err) error = err;
              else response = res;
              finish();
            }) as grpc.ClientUnaryCall;
            call.on("metadata", (md: grpc.Metadata) => (headers = md));
            call.on("status", (st: grpc.StatusObject) => {
              if (!error) resolve({ response, headers, trailers: st.metadata });
              finish();
            });
          });
      } else if (!m.requestStream) {
        out[method] = (req: unknown, opts?: CallOptions) => fn(req, this.metadataFor(opts), this.callOptions(opts));
      } else {
        out[method] = (opts?: CallOptions) => fn(this.metadataFor(opts), this.callOptions(opts));
      }
    }
    return out;
  }

  close(): void {
    for (const c of this.clients.splice(0)) c.close();
  }
}

/** Runs `p` expecting a gRPC error and returns it; fails if the call succeeds. */
export async function expectRpcError(p: Promise<unknown>): Promise<RpcError> {
  try {
    const r = await p;
    throw new Error(`expected a gRPC error, got success: ${safeJson(r)}`);
  } catch (e) {
    if (e && typeof e === "object" && "code" in e && typeof (e as RpcError).code === "number") return e as RpcError;
    throw e;
  }
}

export function codeName(code: number | undefined): string {
  if (code === undefined) return "undefined";
  return (grpc.status as unknown as Record<number, string>)[code] ?? String(code);
}

export function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (x && x.type === "Buffer" && Array.isArray(x.data) ? `<${x.data.length} bytes>` : x)).slice(0, 2000);
  } catch {
    return String(v);
  }
}

// ---------------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------------
export interface StreamOutcome<T> {
  items: T[];
  /** Response headers (null if none arrived). */
  headers: grpc.Metadata | null;
  /** Final status (code OK on a clean end). */
  status: grpc.StatusObject | null;
  /** The error the stream ended with, if any (its .metadata holds the trailers). */
  error: RpcError | null;
}

/** Reads a server stream to its end (or error) without throwing. */
export function collectSettled<T>(call: grpc.ClientReadableStream<T>, timeoutMs = 20_000): Promise<StreamOutcome<T>> {
  return new Promise((resolve) => {
    const out: StreamOutcome<T> = { items: [], headers: null, status: null, error: null };
    let ended = false;
    let statusSeen = false;
    const timer = setTimeout(() => {
      out.error = Object.assign(new Error(`stream did not finish within ${timeoutMs} ms`), {
        code: grpc.status.DEADLINE_EXCEEDED,
        details: "client-side collect timeout",
        metadata: new grpc.Metadata(),
      }) as RpcError;
      call.cancel();
      resolve(out);
    }, timeoutMs);
    const maybeDone = () => {
      if ((ended || out.error) && statusSeen) {
        clearTimeout(timer);
        if (out.error) out.error.headers = out.headers ?? undefined;
        resolve(out);
      }
    };
    call.on("metadata", (md: grpc.Metadata) => (out.headers = md));
    call.on("data", (d: T) => out.items.push(d));
    call.on("error", (e: RpcError) => {
      out.error = e;
      maybeDone();
    });
    call.on("status", (st: grpc.StatusObject) => {
      out.status = st;
      statusSeen = true;
      maybeDone();
    });
    call.on("end", () => {
      ended = true;
      maybeDone();
    });
  });
}

/** Reads a server stream to its end; throws the stream's gRPC error. */
export async function collect<T>(call: grpc.ClientReadableStream<T>, timeoutMs = 20_000): Promise<T[]> {
  const r = await collectSettled(call, timeoutMs);
  if (r.error) throw r.error;
  return r.items;
}

/**
 * Follows an open-ended server stream (e.g. ListenByWorker): items accumulate in `.items`;
 * `waitFor(n)` resolves once n items arrived; `close()` cancels the call.
 */
export class StreamTap<T> {
  readonly items: T[] = [];
  headers: grpc.Metadata | null = null;
  error: RpcError | null = null;
  ended = false;
  private waiters: (() => void)[] = [];

  constructor(readonly call: grpc.ClientReadableStream<T>) {
    call.on("metadata", (md: grpc.Metadata) => (this.headers = md));
    call.on("data", (d: T) => {
      this.items.push(d);
      this.wake();
    });
    call.on("error", (e: RpcError) => {
      if (e.code !== grpc.status.CANCELLED || !this.closed) this.error = e;
      this.ended = true;
      this.wake();
    });
    call.on("end", () => {
      this.ended = true;
      this.wake();
    });
  }

  private closed = false;
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when `n` items arrived; rejects on stream error/end or timeout. */
  async waitFor(n: number, timeoutMs = 10_000): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.items.length < n) {
      if (this.error) throw this.error;
      if (this.ended) throw new Error(`stream ended after ${this.items.length} of ${n} items`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} stream items (got ${this.items.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.items.slice(0, n);
  }

  /** Resolves with the stream's error (rejects if it gets items or ends cleanly instead). */
  async waitForError(timeoutMs = 10_000): Promise<RpcError> {
    const deadline = Date.now() + timeoutMs;
    while (!this.error) {
      if (this.ended) throw new Error("stream ended without an error");
      if (this.items.length) throw new Error(`stream yielded items instead of an error: ${safeJson(this.items[0])}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a stream error");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.error;
  }

  close(): void {
    this.closed = true;
    this.call.cancel();
  }
}

// ---------------------------------------------------------------------------------------------------
// Raw calls (bytes in, bytes out) for deliberately invalid requests
// ---------------------------------------------------------------------------------------------------
const identity = (b: Buffer) => b;

/** Sends `body` as the raw request message of `/pkg.Service/Method`; resolves with the raw response bytes. */
export function rawUnary(
  address: string,
  methodPath: string,
  body: Uint8Array,
  opts: { metadata?: grpc.Metadata; token?: string; timeoutMs?: number } = {},
): Promise<Buffer> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
    "grpc.max_send_message_length": -1,
    "grpc.max_receive_message_length": -1,
  });
  const md = opts.metadata ? opts.metadata.clone() : new grpc.Metadata();
  if (opts.token) md.set(AUTH_HEADER, opts.token);
  const callOpts: grpc.CallOptions = { deadline: new Date(Date.now() + (opts.timeoutMs ?? 20_000)) };
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(methodPath, identity, identity, Buffer.from(body), md, callOpts, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res as Buffer);
    });
  });
}

/** Encodes `request` as the method's input type with protobufjs (invalid enum numbers pass through), sends it raw, decodes the reply. */
export async function rawUnaryTyped<T = Record<string, any>>(
  address: string,
  service: ServiceName,
  method: string,
  request: Record<string, unknown>,
  opts: { metadata?: grpc.Metadata; token?: string; timeoutMs?: number } = {},
): Promise<T> {
  const svc = protoRoot().lookupService(`jobworkerp.service.${service}`);
  const m = svc.methods[method];
  if (!m) throw new Error(`no method ${service}.${method}`);
  m.resolve();
  const reqName = m.resolvedRequestType!.fullName.replace(/^\./, "");
  const resName = m.resolvedResponseType!.fullName.replace(/^\./, "");
  const bytes = encodeMessage(reqName, request);
  const res = await rawUnary(address, `/jobworkerp.service.${service}/${method}`, bytes, opts);
  return decodeMessage<T>(resName, res);
}

// ---------------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------------
const healthRoot = protobuf.Root.fromJSON({
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: "string", id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: "ServingStatus", id: 1 } },
                  nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
                },
              },
            },
          },
        },
      },
    },
  },
});
const HealthReq = healthRoot.lookupType("grpc.health.v1.HealthCheckRequest");
const HealthRes = healthRoot.lookupType("grpc.health.v1.HealthCheckResponse");

/** grpc.health.v1.Health/Check; resolves with the status name ("SERVING", ...). Never sends auth. */
export async function healthCheck(address: string, service = "", timeoutMs = 1000): Promise<string> {
  const req = Buffer.from(HealthReq.encode(HealthReq.create({ service })).finish());
  const res = await rawUnary(address, "/grpc.health.v1.Health/Check", req, { timeoutMs });
  return HealthRes.toObject(HealthRes.decode(res), { enums: String, defaults: true }).status as string;
}

// ---------------------------------------------------------------------------------------------------
// Runner payload codecs (protobufjs over proto/jobworkerp/runner/*.proto) and wire metadata
// ---------------------------------------------------------------------------------------------------
export interface CommandArgs {
  command: string;
  args?: string[];
  with_memory_monitoring?: boolean;
  treat_nonzero_as_error?: boolean;
  success_exit_codes?: number[];
  working_dir?: string;
  stdin?: string;
}
export interface CommandResult {
  exit_code?: number;
  stdout?: string;
  stderr?: string;
  execution_time_ms?: string;
  started_at?: string;
  max_memory_usage_kb?: string;
}
export interface KeyValue {
  key: string;
  value: string;
}
export interface HttpRequestArgs {
  headers?: KeyValue[];
  method: string;
  path: string;
  body?: string;
  queries?: KeyValue[];
}
export interface HttpResponseResult {
  status_code: number;
  headers: KeyValue[];
  content?: string;
  chunk?: Buffer;
  response_data?: "content" | "chunk";
}

export const encodeCommandArgs = (a: CommandArgs): Buffer => encodeMessage("jobworkerp.runner.CommandArgs", a as unknown as Obj);
export const decodeCommandArgs = (b: Uint8Array): CommandArgs => decodeMessage("jobworkerp.runner.CommandArgs", b);
export const decodeCommandResult = (b: Uint8Array): CommandResult => decodeMessage("jobworkerp.runner.CommandResult", b);
export const encodeCommandResult = (r: CommandResult): Buffer => encodeMessage("jobworkerp.runner.CommandResult", r as unknown as Obj);
export const encodeHttpSettings = (s: { base_url: string }): Buffer =>
  encodeMessage("jobworkerp.runner.HttpRequestRunnerSettings", s);
export const decodeHttpSettings = (b: Uint8Array): { base_url: string } =>
  decodeMessage("jobworkerp.runner.HttpRequestRunnerSettings", b);
export const encodeHttpArgs = (a: HttpRequestArgs): Buffer => encodeMessage("jobworkerp.runner.HttpRequestArgs", a as unknown as Obj);
export const decodeHttpResponse = (b: Uint8Array): HttpResponseResult => decodeMessage("jobworkerp.runner.HttpResponseResult", b);

/** Shorthand: args for `sh -c SCRIPT`. */
export const shArgs = (script: string, extra: Partial<CommandArgs> = {}): Buffer =>
  encodeCommandArgs({ command: "sh", args: ["-c", script], ...extra });

export const decodeJobId = (b: Uint8Array): Id => decodeMessage("jobworkerp.data.JobId", b);
export const decodeJobResult = (b: Uint8Array): JobResult => decodeMessage("jobworkerp.data.JobResult", b);

/** Decodes the binary `x-job-id-bin` header. */
export function jobIdFromHeaders(md: grpc.Metadata | null | undefined): Id | undefined {
  const v = md?.get("x-job-id-bin")[0];
  return v === undefined ? undefined : decodeJobId(typeof v === "string" ? Buffer.from(v, "base64") : v);
}

/** Decodes the binary `x-job-result-bin` trailer (from an error's .metadata). */
export function jobResultFromTrailers(md: grpc.Metadata | null | undefined): JobResult | undefined {
  const v = md?.get("x-job-result-bin")[0];
  return v === undefined ? undefined : decodeJobResult(typeof v === "string" ? Buffer.from(v, "base64") : v);
}

/** Decodes a COMMAND JobResult's output (CommandResult). */
export function commandOutput(r: JobResult | undefined | null): CommandResult {
  if (!r) throw new Error("no job result");
  return decodeCommandResult(r.data.output?.items ?? Buffer.alloc(0));
}

/** UTF-8 text of a result's output (error results carry the error message). */
export function outputText(r: JobResult | undefined | null): string {
  return r?.data?.output?.items?.toString("utf8") ?? "";
}
