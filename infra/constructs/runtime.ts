// What every jobworkerp process in AWS gets: its environment (the names cli/config.ts reads) and the IAM
// permissions of the runtime's AWS adapters. One place, so the front, the channel workers and the Lambdas agree.
import { ArnFormat, Stack } from "aws-cdk-lib";
import type * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import type { Construct, IConstruct } from "constructs";
import { workerServiceName } from "../../worker-container/src/adapters/aws/resources.js";
import type { ChannelSpec } from "../../worker-container/src/core/channel_config.js";
import { justify, nagValue } from "../nag.js";
import { DB_NAME } from "./data.js";

/** Where the image keeps the channels file (worker-container/Dockerfile copies channels.json there). */
export const IMAGE_CHANNELS_CONFIG = "/app/channels.json";
export const GRPC_PORT = 9000;

export interface RuntimeProps {
  resourcePrefix: string;
  clusterName: string;
  channels: ChannelSpec[];
  dbHost: string;
  dbPort: string;
  dbSecret: secretsmanager.ISecret;
  redisUrl: string;
  cacheAuthToken: secretsmanager.ISecret;
  table: dynamodb.ITable;
}

export class Runtime {
  constructor(private readonly props: RuntimeProps) {}

  /** Plain settings shared by every role (no secret among them). */
  environment(scope: Construct): Record<string, string> {
    const p = this.props;
    return {
      STORAGE_TYPE: "Aws",
      AWS_REGION: Stack.of(scope).region,
      AWS_RESOURCE_PREFIX: p.resourcePrefix,
      CHANNELS_CONFIG: IMAGE_CHANNELS_CONFIG,
      ECS_CLUSTER: p.clusterName,
      MYSQL_HOST: p.dbHost,
      MYSQL_PORT: p.dbPort,
      MYSQL_DBNAME: DB_NAME,
      REDIS_URL: p.redisUrl,
      REDIS_KEY_PREFIX: p.resourcePrefix,
      LOG_LEVEL: "info",
    };
  }

  /** Secrets ECS injects at start (never in the task definition's plaintext). */
  containerSecrets(): Record<string, ecs.Secret> {
    return {
      MYSQL_USER: ecs.Secret.fromSecretsManager(this.props.dbSecret, "username"),
      MYSQL_PASSWORD: ecs.Secret.fromSecretsManager(this.props.dbSecret, "password"),
      REDIS_PASSWORD: ecs.Secret.fromSecretsManager(this.props.cacheAuthToken),
    };
  }

  /** `arn:…:sqs:<region>:<account>:<prefix>-*`: every queue of this deployment (and nothing else). */
  queuePattern(scope: Construct): string {
    return Stack.of(scope).formatArn({ service: "sqs", resource: `${this.props.resourcePrefix}-*`, arnFormat: ArnFormat.NO_RESOURCE_NAME });
  }

  /** ARNs of the channel worker services (names fixed by workerServiceName, so no dependency on the services). */
  workerServiceArns(scope: Construct): string[] {
    return this.props.channels.map((c) =>
      Stack.of(scope).formatArn({ service: "ecs", resource: "service", resourceName: `${this.props.clusterName}/${workerServiceName(this.props.resourcePrefix, c.name)}`, arnFormat: ArnFormat.SLASH_RESOURCE_NAME }),
    );
  }

  /**
   * What any process that enqueues jobs needs: send to (and look up) any queue of the deployment, read and write
   * job state, and wake a sleeping channel's service (scale-from-zero).
   */
  grantEnqueue(scope: Construct, grantee: iam.IGrantable & IConstruct): void {
    const queues = this.queuePattern(scope);
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: "EnqueueToDeploymentQueues",
        actions: ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
        resources: [queues],
      }),
    );
    this.props.table.grantReadWriteData(grantee);
    justify(grantee, [
      {
        id: "AwsSolutions-IAM5",
        reason:
          "A job may be enqueued to any channel (clients, retries, workflow and LLM tool calls), so sending is allowed to every queue of this deployment (its prefix) and to no other; the job-state table's status index is read through `/index/*`.",
        appliesTo: [`Resource::${nagValue(scope, queues)}`, `Resource::${nagValue(scope, this.props.table.tableArn)}/index/*`],
      },
    ]);
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: "WakeChannelServices", actions: ["ecs:DescribeServices", "ecs:UpdateService"], resources: this.workerServiceArns(scope) }),
    );
  }
}
