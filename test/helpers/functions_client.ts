// Typed clients for jobworkerp.function.service.FunctionService / FunctionSetService, loaded with proto-loader
// from proto/ like the rest of the e2e client (nothing here imports the server's code). Shapes follow
// LOADER_OPTIONS: snake_case fields, int64 as strings, enums as names, unset optionals absent.
import * as protoLoader from "@grpc/proto-loader";
import { type Api, type CallOptions, type RpcError, type UnaryResult, collect, grpc } from "./client.js";
import { LOADER_OPTIONS, PROTO_DIR } from "./protos.js";

type Obj = Record<string, unknown>;
type Long = string;

export interface MethodSchema {
  description?: string;
  arguments_schema: string;
  result_schema?: string;
  output_type: string;
}
export interface FunctionSpecs {
  runner_type: string;
  runner_id: { value: Long };
  worker_id?: { value: Long };
  name: string;
  description: string;
  settings_schema: string;
  methods: { schemas: Record<string, MethodSchema> } | null;
}
export interface FunctionResult {
  output: string;
  status?: string;
  error_message?: string;
  error_code?: string;
  last_info?: { job_id: string; started_at: Long; completed_at?: Long; execution_time_ms?: Long; metadata: Record<string, string> };
}
export interface FunctionUsingIn {
  function_id: { runner_id?: { value: string | number } } | { worker_id?: { value: string | number } };
  using?: string;
}
export interface FunctionSetDataIn {
  name: string;
  description?: string;
  category?: number;
  targets?: FunctionUsingIn[];
}
export interface FunctionSet {
  id: { value: Long };
  data: { name: string; description: string; category: number; targets: { function_id: Obj; using?: string }[] };
}
export interface FunctionSetDetail {
  id: { value: Long };
  data: { name: string; description: string; category: number; targets: FunctionSpecs[] };
}
export interface FunctionCallRequestIn {
  runner_name?: string;
  worker_name?: string;
  runner_parameters?: { settings_json?: string; worker_options?: Obj };
  args_json?: string;
  uniq_key?: string;
  options?: { timeout_ms?: number | string; streaming?: boolean; metadata?: Record<string, string> };
}

type Unary<Req, Res> = (req: Req, opts?: CallOptions) => Promise<UnaryResult<Res>>;
type ServerStream<Req, Res> = (req: Req, opts?: CallOptions) => grpc.ClientReadableStream<Res>;

export interface FunctionServiceApi {
  FindList: ServerStream<{ exclude_runner?: boolean; exclude_worker?: boolean }, FunctionSpecs>;
  FindListBySet: ServerStream<{ name: string }, FunctionSpecs>;
  Call: ServerStream<FunctionCallRequestIn, FunctionResult>;
  Find: Unary<FunctionUsingIn, { data?: FunctionSpecs }>;
  FindByName: Unary<{ runner_name?: string; worker_name?: string }, { data?: FunctionSpecs }>;
  CreateWorker: Unary<Obj, { worker_id: { value: Long }; worker_name: string }>;
  UpsertWorker: Unary<Obj, { worker_id: { value: Long }; worker_name: string }>;
}
export interface FunctionSetServiceApi {
  Create: Unary<FunctionSetDataIn, { id: { value: Long } }>;
  Update: Unary<{ id: { value: string | number }; data: FunctionSetDataIn }, { is_success: boolean }>;
  Delete: Unary<{ value: string | number }, { is_success: boolean }>;
  Find: Unary<{ value: string | number }, { data?: FunctionSet }>;
  FindByName: Unary<{ name: string }, { data?: FunctionSet }>;
  FindList: ServerStream<{ limit?: number; offset?: number }, FunctionSet>;
  Count: Unary<Obj, { total: Long }>;
  FindDetail: Unary<{ value: string | number }, { data?: FunctionSetDetail }>;
  FindDetailByName: Unary<{ name: string }, { data?: FunctionSetDetail }>;
}

let definition: protoLoader.PackageDefinition | undefined;
function serviceDefinition(name: "FunctionService" | "FunctionSetService"): grpc.ServiceDefinition {
  definition ??= protoLoader.loadSync(["jobworkerp/function/service/function.proto", "jobworkerp/function/service/function_set.proto"], {
    ...LOADER_OPTIONS,
    includeDirs: [PROTO_DIR],
  });
  return definition[`jobworkerp.function.service.${name}`] as grpc.ServiceDefinition;
}

/** Both function services on the Api's address, with its token and channel options. */
export class FunctionsApi {
  readonly fn: FunctionServiceApi;
  readonly sets: FunctionSetServiceApi;
  private readonly clients: grpc.Client[] = [];

  constructor(private readonly api: Api) {
    this.fn = this.wrap("FunctionService") as unknown as FunctionServiceApi;
    this.sets = this.wrap("FunctionSetService") as unknown as FunctionSetServiceApi;
  }

  private wrap(name: "FunctionService" | "FunctionSetService"): Obj {
    const def = serviceDefinition(name);
    const Ctor = grpc.makeGenericClientConstructor(def, name);
    const client = new Ctor(this.api.address, grpc.credentials.createInsecure(), { ...this.api.options.channelOptions });
    this.clients.push(client);
    const out: Obj = {};
    for (const [method, m] of Object.entries(def)) {
      const fn = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[method].bind(client);
      out[method] = m.responseStream
        ? (req: unknown, opts?: CallOptions) => fn(req, this.api.metadataFor(opts), this.api.callOptions(opts))
        : (req: unknown, opts?: CallOptions) =>
            new Promise<UnaryResult<unknown>>((resolve, reject) => {
              let headers = new grpc.Metadata();
              const call = fn(req, this.api.metadataFor(opts), this.api.callOptions(opts), (err: RpcError | null, res: unknown) => {
                if (err) reject(err);
                else resolve({ response: res, headers, trailers: new grpc.Metadata() });
              }) as grpc.ClientUnaryCall;
              call.on("metadata", (md: grpc.Metadata) => (headers = md));
            });
    }
    return out;
  }

  /** FunctionService.Call read to its end (throws the stream's gRPC error). */
  call(req: FunctionCallRequestIn, timeoutMs = 30_000): Promise<FunctionResult[]> {
    return collect(this.fn.Call(req, { timeoutMs }), timeoutMs + 2000);
  }

  listFunctions(req: { exclude_runner?: boolean; exclude_worker?: boolean } = {}): Promise<FunctionSpecs[]> {
    return collect(this.fn.FindList(req));
  }

  close(): void {
    for (const c of this.clients.splice(0)) c.close();
  }
}
