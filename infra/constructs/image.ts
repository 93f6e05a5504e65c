// The one container image of every role (front, worker, all-in-one): built by the CDK from
// worker-container/Dockerfile with the repository as its context. Synth only stages the context (no Docker);
// the .dockerignore at the repo root keeps it to what the Dockerfile copies.
import { Platform } from "aws-cdk-lib/aws-ecr-assets";
import * as ecs from "aws-cdk-lib/aws-ecs";
import { REPO_ROOT } from "../config.js";

export const DOCKERFILE = "worker-container/Dockerfile";

export function workerImage(): ecs.ContainerImage {
  return ecs.ContainerImage.fromAsset(REPO_ROOT, { file: DOCKERFILE, platform: Platform.LINUX_AMD64 });
}
