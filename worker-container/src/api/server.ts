// The gRPC server: the seven jobworkerp services, grpc.health.v1 and server reflection.
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
import { mountService, type MountOptions } from "./grpc.js";
import { jobService } from "./services/job.js";
import { jobRestoreService } from "./services/job_restore.js";
import { jobResultService } from "./services/job_result.js";
import { jobStatusService } from "./services/job_status.js";
import { runnerService } from "./services/runner.js";
import { workerService } from "./services/worker.js";
import { workerInstanceService } from "./services/worker_instance.js";

const SERVICE_FILES = [
  file_jobworkerp_service_worker,
  file_jobworkerp_service_job,
  file_jobworkerp_service_job_result,
  file_jobworkerp_service_runner,
  file_jobworkerp_service_worker_instance,
];

export interface ServerOptions extends MountOptions {
  maxMessageBytes: number;
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
  mountService(server, WorkerService, workerService(sys), opts);
  mountService(server, JobService, jobService(sys), opts);
  mountService(server, JobResultService, jobResultService(sys), opts);
  mountService(server, RunnerService, runnerService(sys), opts);
  mountService(server, JobProcessingStatusService, jobStatusService(sys), opts);
  mountService(server, JobRestoreService, jobRestoreService(sys), opts);
  mountService(server, WorkerInstanceService, workerInstanceService(sys), opts);

  const names = [WorkerService, JobService, JobResultService, RunnerService, JobProcessingStatusService, JobRestoreService, WorkerInstanceService].map((s) => s.typeName);
  const health = new HealthImplementation(Object.fromEntries(["", ...names].map((n) => [n, "SERVING"])));
  health.addToServer(server);
  new ReflectionService(reflectionDefinition()).addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    server,
    port,
    async close(graceMs) {
      for (const n of ["", ...names]) health.setStatus(n, "NOT_SERVING");
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
    },
  };
}
