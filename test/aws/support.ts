// Shared by the AWS-mode tests: the run's local AWS endpoint (moto server) and clients for it.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { AwsClients } from "../../worker-container/src/adapters/aws/clients.js";
import { ensureJobStateTable, ensureQueueWithDlq } from "../../worker-container/src/adapters/aws/provision.js";
import { channelQueues } from "../../worker-container/src/adapters/aws/resources.js";
import { loadFunctionConfig, type FunctionConfig } from "../../worker-container/src/cli/config.js";
import type { ChannelSpec } from "../../worker-container/src/core/channel_config.js";
import { awsTestConfig } from "../helpers/aws.js";
import { LOCAL_AWS_REGION } from "../helpers/moto.js";

/** The endpoint of the run's moto server (global setup). */
export function awsEndpoint(): string {
  return awsTestConfig().endpointUrl!;
}

/** Client config for the local endpoint: static credentials in the config, never from the environment. */
export const localAws = awsTestConfig;

/**
 * One call of the endpoint's EC2 Query API. No EC2 SDK client is installed, and the tests need only a subnet and an
 * instance id from it; moto reads the service from the Authorization header's scope and checks no signature.
 */
async function ec2(params: Record<string, string>): Promise<string> {
  const res = await fetch(awsEndpoint(), {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `AWS4-HMAC-SHA256 Credential=test/20240101/${LOCAL_AWS_REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: new URLSearchParams({ ...params, Version: "2016-11-15" }).toString(),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`EC2 ${params.Action}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return text;
}

/** A default-VPC subnet (ECS awsvpc tasks need one). */
export async function defaultSubnet(): Promise<string> {
  const m = /<subnetId>([^<]+)<\/subnetId>/.exec(await ec2({ Action: "DescribeSubnets" }));
  if (!m) throw new Error("no subnet in the endpoint's EC2");
  return m[1];
}

/** An EC2 instance id (an ECS container instance must be one). */
export async function launchInstance(): Promise<string> {
  const m = /<instanceId>([^<]+)<\/instanceId>/.exec(await ec2({ Action: "RunInstances", ImageId: "ami-12c6146b", MinCount: "1", MaxCount: "1", InstanceType: "g4dn.xlarge" }));
  if (!m) throw new Error("RunInstances returned no instance");
  return m[1];
}

/** A name unique to this run and file (moto is shared by every test file). */
export const uniqueName = (what: string) => `${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

/** A function config (loadFunctionConfig) over the run's services, from an environment object (never process.env). */
export function functionConfig(opts: { mysqlUrl: string; redisUrl: string; prefix: string; channels: unknown; extra?: Record<string, string> }): FunctionConfig {
  const dir = mkdtempSync(join(tmpdir(), "jw-fn-"));
  const channelsFile = join(dir, "channels.json");
  writeFileSync(channelsFile, JSON.stringify({ channels: opts.channels }));
  return loadFunctionConfig({
    MYSQL_URL: opts.mysqlUrl,
    REDIS_URL: opts.redisUrl,
    REDIS_KEY_PREFIX: opts.prefix,
    AWS_REGION: LOCAL_AWS_REGION,
    AWS_ENDPOINT_URL: awsEndpoint(),
    AWS_RESOURCE_PREFIX: opts.prefix,
    CHANNELS_CONFIG: channelsFile,
    LOG_LEVEL: "silent",
    ...opts.extra,
  });
}

/** The queues and DLQs of every channel, and the job-state table, as bootstrap (or the CDK app) creates them. */
export async function provisionChannels(clients: AwsClients, prefix: string, channels: readonly ChannelSpec[]): Promise<void> {
  await ensureJobStateTable(clients.dynamo, prefix);
  for (const spec of channels) {
    for (const q of channelQueues(prefix, spec)) await ensureQueueWithDlq(clients.sqs, { name: q.name, dlqName: q.dlqName, maxReceiveCount: spec.maxReceiveCount });
  }
}

/** Messages in a queue: waiting, delayed and in flight. */
export async function messagesIn(sqs: SQSClient, name: string): Promise<number> {
  const url = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
  const a = (
    await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"],
      }),
    )
  ).Attributes!;
  return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesDelayed) + Number(a.ApproximateNumberOfMessagesNotVisible);
}
