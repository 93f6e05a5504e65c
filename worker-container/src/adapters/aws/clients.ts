// SQS and DynamoDB clients from an explicit config (the composition root reads the environment, not this file).
// Without credentials the SDK's standard chain applies (env, profile, ECS task role, IMDS).
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";

export interface AwsClientConfig {
  region: string;
  /** A local endpoint (moto server, LocalStack): every client talks to it. */
  endpointUrl?: string;
  /** Static credentials (local endpoints, tests); omitted: the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** SDK retries for throttling / 5xx (default 3). */
  maxAttempts?: number;
}

export interface AwsClients {
  sqs: SQSClient;
  dynamo: DynamoDBClient;
  destroy(): void;
}

function common(cfg: AwsClientConfig) {
  return {
    region: cfg.region,
    ...(cfg.endpointUrl ? { endpoint: cfg.endpointUrl } : {}),
    ...(cfg.credentials ? { credentials: cfg.credentials } : {}),
    maxAttempts: cfg.maxAttempts ?? 3,
  };
}

export function createSqsClient(cfg: AwsClientConfig): SQSClient {
  return new SQSClient(common(cfg));
}

export function createDynamoClient(cfg: AwsClientConfig): DynamoDBClient {
  return new DynamoDBClient(common(cfg));
}

export function createAwsClients(cfg: AwsClientConfig): AwsClients {
  const sqs = createSqsClient(cfg);
  const dynamo = createDynamoClient(cfg);
  return {
    sqs,
    dynamo,
    destroy() {
      sqs.destroy();
      dynamo.destroy();
    },
  };
}

/** AWS SDK errors carry their service error code in `name`. */
export function awsErrorName(e: unknown): string {
  return e instanceof Error ? e.name : "";
}
