// A gRPC server reflection client over grpc-js: fetches the file that declares a service (and the files it
// depends on) and builds a protobuf-es registry from them. Speaks grpc.reflection.v1 and falls back to v1alpha
// (older servers) when v1 is UNIMPLEMENTED. The reflection service definition is loaded from the .proto files
// that @grpc/reflection ships, so nothing is copied into this repository.
import { fromBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { RunnerError } from "../runner.js";
import { repairDescriptors } from "./descriptor_repair.js";
import { registryOf } from "./file_set.js";
import { wellKnownFile } from "./well_known.js";

type Version = "v1" | "v1alpha";

interface ReflectionRequest {
  host: string;
  file_by_filename?: string;
  file_containing_symbol?: string;
}
interface ReflectionResponse {
  message_response?: "file_descriptor_response" | "error_response" | string;
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

type ReflectionStub = grpc.Client & {
  ServerReflectionInfo(metadata: grpc.Metadata, options: grpc.CallOptions): grpc.ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
};
type StubConstructor = new (address: string, creds: grpc.ChannelCredentials, options: grpc.ClientOptions) => ReflectionStub;

const stubConstructors = new Map<Version, StubConstructor>();

/** The ServerReflection client class of one protocol version, from @grpc/reflection's bundled .proto. */
function stubConstructor(version: Version): StubConstructor {
  let ctor = stubConstructors.get(version);
  if (!ctor) {
    // build/src/index.js → build/proto/
    const protoDir = join(dirname(createRequire(import.meta.url).resolve("@grpc/reflection")), "..", "proto");
    const def = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
      includeDirs: [protoDir],
      keepCase: true,
      longs: String,
      enums: String,
      oneofs: true,
    });
    const service = def[`grpc.reflection.${version}.ServerReflection`] as grpc.ServiceDefinition;
    ctor = grpc.makeGenericClientConstructor(service, "ServerReflection") as unknown as StubConstructor;
    stubConstructors.set(version, ctor);
  }
  return ctor;
}

export interface ReflectionCallOptions {
  metadata: grpc.Metadata;
  deadline: number | undefined;
  signal: AbortSignal;
}

/** One reflection stream: requests are answered in order, one at a time. */
class ReflectionSession {
  private readonly call: grpc.ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
  private waiting: { resolve(r: ReflectionResponse): void; reject(e: Error): void } | undefined;
  private failure: Error | undefined;

  constructor(stub: ReflectionStub, opts: ReflectionCallOptions) {
    this.call = stub.ServerReflectionInfo(opts.metadata, opts.deadline ? { deadline: opts.deadline } : {});
    this.call.on("data", (r: ReflectionResponse) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.resolve(r);
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(e);
    };
    this.call.on("error", fail);
    this.call.on("end", () => fail(new Error("reflection stream ended")));
  }

  ask(req: Omit<ReflectionRequest, "host">): Promise<ReflectionResponse> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.call.write({ host: "", ...req });
    });
  }

  close() {
    this.call.end();
    this.call.cancel();
  }
}

function descriptorsOf(r: ReflectionResponse, what: string): FileDescriptorProto[] {
  if (r.error_response) {
    const { error_code, error_message } = r.error_response;
    const name = grpc.status[error_code] ?? String(error_code);
    throw new RunnerError("FATAL_ERROR", `reflection: ${what}: ${name}${error_message ? `: ${error_message}` : ""}`);
  }
  const bytes = r.file_descriptor_response?.file_descriptor_proto ?? [];
  return bytes.map((b) => fromBinary(FileDescriptorProtoSchema, b));
}

const isServiceError = (e: unknown): e is grpc.ServiceError => typeof (e as grpc.ServiceError)?.code === "number";

/**
 * Fetches the descriptors of `serviceName` (fully qualified) through `client`'s channel and returns a registry
 * holding the service, its messages and their dependencies.
 */
export async function reflectService(client: grpc.Client, serviceName: string, opts: ReflectionCallOptions): Promise<FileRegistry> {
  try {
    return await reflectWith("v1", client, serviceName, opts);
  } catch (e) {
    if (isServiceError(e) && e.code === grpc.status.UNIMPLEMENTED) return reflectWith("v1alpha", client, serviceName, opts);
    throw e;
  }
}

async function reflectWith(version: Version, client: grpc.Client, serviceName: string, opts: ReflectionCallOptions): Promise<FileRegistry> {
  const stub = new (stubConstructor(version))("unused", grpc.credentials.createInsecure(), { channelOverride: client.getChannel() });
  const session = new ReflectionSession(stub, opts);
  const onAbort = () => session.close();
  opts.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const files = new Map<string, FileDescriptorProto>();
    const add = (fs: FileDescriptorProto[]) => fs.forEach((f) => files.has(f.name) || files.set(f.name, f));
    const first = descriptorsOf(await session.ask({ file_containing_symbol: serviceName }), `service ${serviceName}`);
    add(first);
    const main = first.find((f) => f.service.some((s) => (f.package ? `${f.package}.${s.name}` : s.name) === serviceName));
    if (!main) throw new RunnerError("FATAL_ERROR", `reflection: the server's answer for ${serviceName} does not declare it`);
    // Servers usually send the transitive dependencies along; ask for any that are missing.
    const visited = new Set<string>();
    const visit = async (name: string): Promise<void> => {
      if (visited.has(name)) return;
      visited.add(name);
      if (!files.has(name)) {
        if (wellKnownFile(name)) return;
        add(descriptorsOf(await session.ask({ file_by_filename: name }), `file ${name}`));
        if (!files.has(name)) throw new RunnerError("FATAL_ERROR", `reflection: the server did not send ${name}`);
      }
      for (const dep of files.get(name)!.dependency) await visit(dep);
    };
    await visit(main.name);
    repairDescriptors([...files.values()]);
    try {
      return registryOf(main, (name) => files.get(name));
    } catch (e) {
      throw new RunnerError("FATAL_ERROR", `reflection: descriptors of ${serviceName} cannot be used: ${(e as Error).message}`);
    }
  } finally {
    opts.signal.removeEventListener("abort", onAbort);
    session.close();
  }
}
