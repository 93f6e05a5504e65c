// Clients of the operational AWS APIs (ECS, CloudWatch, CloudWatch Logs, EventBridge Scheduler) from the same
// explicit config as the SQS/DynamoDB clients (clients.ts): a local endpoint and static credentials when given,
// else the SDK's default chain.
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { ECSClient } from "@aws-sdk/client-ecs";
import { SchedulerClient } from "@aws-sdk/client-scheduler";
import type { AwsClientConfig } from "./clients.js";

function common(cfg: AwsClientConfig) {
  return {
    region: cfg.region,
    ...(cfg.endpointUrl ? { endpoint: cfg.endpointUrl } : {}),
    ...(cfg.credentials ? { credentials: cfg.credentials } : {}),
    maxAttempts: cfg.maxAttempts ?? 3,
  };
}

export const createEcsClient = (cfg: AwsClientConfig) => new ECSClient(common(cfg));
export const createCloudWatchClient = (cfg: AwsClientConfig) => new CloudWatchClient(common(cfg));
export const createLogsClient = (cfg: AwsClientConfig) => new CloudWatchLogsClient(common(cfg));
export const createSchedulerClient = (cfg: AwsClientConfig) => new SchedulerClient(common(cfg));
