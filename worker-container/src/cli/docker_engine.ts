// The DOCKER runner's container engine for DOCKER_BACKEND: undefined for `local` (the runner opens DOCKER_HOST
// itself), an ECS engine for `ecs` whose job tasks are sized by the channel they run on.
import { createEcsClient, createLogsClient } from "../adapters/aws/ops_clients.js";
import { findChannel } from "../core/channel_config.js";
import type { ContainerEngine } from "../runners/docker/engine.js";
import { EcsEngine, type TaskResources } from "../runners/docker/ecs_engine.js";
import type { DockerBackendConfig } from "./config.js";

/** A job task on a channel the channels file does not name. */
const DEFAULT_TASK: TaskResources = { cpu: 512, memoryMiB: 1024, gpu: 0 };

export function dockerEngineFor(cfg: DockerBackendConfig): ContainerEngine | undefined {
  const ecs = cfg.ecs;
  if (cfg.backend !== "ecs" || !ecs) return undefined;
  const aws = { region: ecs.region, endpointUrl: ecs.endpointUrl };
  return new EcsEngine(createEcsClient(aws), createLogsClient(aws), {
    cluster: ecs.cluster,
    subnets: ecs.subnets,
    securityGroups: ecs.securityGroups,
    assignPublicIp: ecs.assignPublicIp,
    executionRoleArn: ecs.executionRoleArn,
    taskRoleArn: ecs.taskRoleArn,
    logGroup: ecs.logGroup,
    region: ecs.region,
    gpuCapacityProvider: ecs.gpuCapacityProvider,
    familyPrefix: ecs.resourcePrefix,
    resourcesOf(channel) {
      const spec = channel === undefined ? undefined : findChannel(ecs.channels, channel);
      return spec ? { cpu: spec.cpu, memoryMiB: spec.memoryMiB, gpu: spec.gpu } : DEFAULT_TASK;
    },
  });
}
