// The gRPC server: the seven jobworkerp services, grpc.health.v1 and server reflection (+ gRPC-Web on the same port).
import { toBinary } from "@bufbuild/protobuf";
import type { DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import type { System } from "../core/system.js";
import { JobProcessingStatusService, JobRestoreService, JobService, file_jobworkerp_service_job } from "../gen/jobworkerp/service/job_pb.js";
import { JobResultService, file_jobworkerp_service_job_result } from "../gen/jobworkerp/service/job_result_pb.js";
import { RunnerService, file_jobworkerp_service_runner } from "../gen/jobworkerp/service/runner_pb.js";
import { WorkerInstanceService, file_jobworkerp_service_worker_instance } from "../gen/jobworkerp/service/worker_instance_pb.js";
import { WorkerService, file_jobworkerp_service_worker } from "../gen/jobworkerp/service/worker_pb.js";
import { FunctionService, file_jobworkerp_function_service_function } from "../gen/jobworkerp/function/service/function_pb.js";
import { FunctionSetService, file_jobworkerp_function_service_function_set } from "../gen/jobworkerp/function/service/function_set_pb.js";
import { mountService, type MountOptions } from "./grpc.js";
import { GrpcWebFront, type WebServiceEntry } from "./grpc_web.js";
import { jobService } from "./services/job.js";
import { jobRestoreService } from "./services/job_restore.js";
import { jobResultService } from "./services/job_result.js";
import { jobStatusService } from "./services/job_status.js";
import { runnerService } from "./services/runner.js";
import { workerService } from "./services/worker.js";
import { workerInstanceService } from "./services/worker_instance.js";
import { functionService } from "./services/function.js";
import { functionSetService } from "./services/function_set.js";
import { listenSharedPort, type SharedPort } from "./shared_port.js";

const SERVICE_FILES = [
  file_jobworkerp_service_worker,
  file_jobworkerp_service_job,
  file_jobworkerp_service_job_result,
  file_jobworkerp_service_runner,
  file_jobworkerp_service_worker_instance,
  file_jobworkerp_function_service_function,
  file_jobworkerp_function_service_function_set,
];

export interface ServerOptions extends MountOptions {
  maxMessageBytes: number;
  /** Also answer gRPC-Web (HTTP/1.1, browsers) on the same address. */
  grpcWeb?: { allowedOrigins: readonly string[] };
}

export interface GrpcFront {
  server: grpc.Server;
  port: number;
  /** Report NOT_SERVING, then stop accepting calls; calls still open after graceMs are cut. */
  close(graceMs: number): Promise<void>;
}

/**
 * The encoded descriptors of every proto file the services use, as @grpc/reflection reads them from a package
 * definition. Given directly (not through proto-loader, which merges files per package and drops their
 * imports), reflection clients get the real files with their dependencies.
 */
function reflectionDefinition() {
  const seen = new Map<string, FileDescriptorProto>();
  const visit = (f: DescFile) => {
    if (seen.has(f.name)) return;
    f.dependencies.forEach(visit);
    seen.set(f.name, f.proto);
  };
  SERVICE_FILES.forEach(visit);
  const fileDescriptorProtos = [...seen.values()].map((p) => toBinary(FileDescriptorProtoSchema, p));
  return { jobworkerp: { fileDescriptorProtos } } as unknown as ConstructorParameters<typeof ReflectionService>[0];
}

export async function startGrpc(sys: System, addr: string, opts: ServerOptions): Promise<GrpcFront> {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": opts.maxMessageBytes,
    "grpc.max_send_message_length": -1,
    "grpc.enable_channelz": 0, // channelz bookkeeping costs CPU on every call and nothing here reads it
  });
  // one set of handlers, mounted for gRPC and (USE_GRPC_WEB) for gRPC-Web
  const services: WebServiceEntry[] = [
    { service: WorkerService, impl: workerService(sys) },
    { service: JobService, impl: jobService(sys) },
    { service: JobResultService, impl: jobResultService(sys) },
    { service: RunnerService, impl: runnerService(sys) },
    { service: JobProcessingStatusService, impl: jobStatusService(sys) },
    { service: JobRestoreService, impl: jobRestoreService(sys) },
    { service: WorkerInstanceService, impl: workerInstanceService(sys) },
    { service: FunctionService, impl: functionService(sys) },
    { service: FunctionSetService, impl: functionSetService(sys) },
  ];
  for (const { service, impl } of services) mountService(server, service, impl, opts);

  const names = [WorkerService, JobService, JobResultService, RunnerService, JobProcessingStatusService, JobRestoreService, WorkerInstanceService, FunctionService, FunctionSetService].map((s) => s.typeName);
  const health = new HealthImplementation(Object.fromEntries(["", ...names].map((n) => [n, "SERVING"])));
  health.addToServer(server);
  new ReflectionService(reflectionDefinition()).addToServer(server);

  const web = opts.grpcWeb ? new GrpcWebFront(services, { ...opts, ...opts.grpcWeb }) : undefined;
  let shared: SharedPort | undefined;
  if (web) {
    // gRPC-Web on the gRPC port, as tonic-web: HTTP/2 connections go to grpc-js, HTTP/1.1 ones to gRPC-Web
    const h2 = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    shared = await listenSharedPort(addr, { http2: (s) => h2.injectConnection(s), http1: (s) => web.http.emit("connection", s) });
  }
  const port = shared?.port ?? await new Promise<number>((resolve, reject) =>
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    server,
    port,
    async close(graceMs) {
      for (const n of ["", ...names]) health.setStatus(n, "NOT_SERVING");
      shared?.close();
      const webClosed = web?.close(graceMs);
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await webClosed;
    },
  };
}
