// The metrics Lambda against the emulator (moto server): real queues with messages waiting and in flight, ECS
// services named as the CDK app names them, and the published data read back from CloudWatch. moto reports 0
// running tasks for every service (it runs none), so BacklogPerTask equals Backlog here.
import { CloudWatchClient, GetMetricDataCommand, ListMetricsCommand } from "@aws-sdk/client-cloudwatch";
import { CreateClusterCommand, CreateServiceCommand, ECSClient, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import { GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { Context } from "aws-lambda";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { buildMetricsDeps } from "../../functions/deps.js";
import { metricsHandler } from "../../functions/metrics.js";
import { DIMENSION, METRIC, METRICS_NAMESPACE } from "../../worker-container/src/adapters/aws/backlog_metrics.js";
import { createAwsClients } from "../../worker-container/src/adapters/aws/clients.js";
import { createCloudWatchClient, createEcsClient } from "../../worker-container/src/adapters/aws/ops_clients.js";
import { workerServiceName } from "../../worker-container/src/adapters/aws/resources.js";
import { sqsQueueName } from "../../worker-container/src/core/channel_config.js";
import { Priority } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { newResourcePrefix } from "../helpers/aws.js";
import { functionConfig, localAws, provisionChannels } from "./support.js";

const prefix = newResourcePrefix("met");
const alpha = `${prefix}-alpha`;
const beta = `${prefix}-beta`;
const gamma = `${prefix}-gamma`; // no service: its backlog per task is unknown, so nothing is published for it
const cluster = `${prefix}-cluster`;
const aws = createAwsClients(localAws());
const ecs: ECSClient = createEcsClient(localAws());
const cw: CloudWatchClient = createCloudWatchClient(localAws());
let deps: Awaited<ReturnType<typeof buildMetricsDeps>>;

async function send(channel: string, priority: Priority, n: number, inFlight = 0) {
  const QueueUrl = (await aws.sqs.send(new GetQueueUrlCommand({ QueueName: sqsQueueName(prefix, channel, priority) }))).QueueUrl!;
  for (let i = 0; i < n; i++) await aws.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `m${i}` }));
  if (inFlight) {
    const got = await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: inFlight, VisibilityTimeout: 600 }));
    expect(got.Messages).toHaveLength(inFlight);
  }
}

/** The latest value of a metric (Maximum over the last minutes). */
async function latest(name: string, dims: Record<string, string>): Promise<number | undefined> {
  const now = Date.now();
  const out = await cw.send(
    new GetMetricDataCommand({
      StartTime: new Date(now - 10 * 60_000),
      EndTime: new Date(now + 60_000),
      MetricDataQueries: [
        {
          Id: "m",
          MetricStat: {
            Metric: { Namespace: METRICS_NAMESPACE, MetricName: name, Dimensions: Object.entries(dims).map(([Name, Value]) => ({ Name, Value })) },
            Period: 60,
            Stat: "Maximum",
          },
        },
      ],
    }),
  );
  return out.MetricDataResults?.[0]?.Values?.[0];
}

beforeAll(async () => {
  const channels = [{ name: alpha }, { name: beta, subQueues: [{ name: "high", weight: 3 }, { name: "low", weight: 1 }] }, { name: gamma }];
  const cfg = functionConfig({ mysqlUrl: inject("mysqlUrl"), redisUrl: inject("redisUrl"), prefix, channels, extra: { ECS_CLUSTER: cluster } });
  await provisionChannels(aws, prefix, cfg.channels);
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  const td = await ecs.send(new RegisterTaskDefinitionCommand({ family: `${prefix}-worker`, containerDefinitions: [{ name: "worker", image: "jobworkerp:test", memory: 512 }] }));
  for (const ch of [alpha, beta]) {
    await ecs.send(new CreateServiceCommand({ cluster, serviceName: workerServiceName(prefix, ch), taskDefinition: td.taskDefinition!.taskDefinitionArn, desiredCount: 1 }));
  }
  await send(alpha, Priority.MEDIUM, 3);
  await send(alpha, Priority.HIGH, 2, 1); // one of them in flight (a worker holds it)
  await send(`${beta}:high`, Priority.MEDIUM, 4);
  await send(`${beta}:low`, Priority.LOW, 1);
  await send(gamma, Priority.MEDIUM, 2);
  deps = await buildMetricsDeps(cfg, { aws: localAws(), log: pino({ level: "silent" }) });
}, 60_000);

afterAll(async () => {
  await deps?.close();
  aws.destroy();
  ecs.destroy();
  cw.destroy();
});

describe("metrics Lambda (autoscaling signal)", () => {
  it("publishes Backlog (waiting + in flight) and BacklogPerTask per channel, and Backlog per sub-queue", async () => {
    const out = await metricsHandler(async () => deps)({}, {} as Context);
    expect(out).toEqual({ channels: 2, data: 2 + 2 + 2 });

    expect(await latest(METRIC.backlog, { [DIMENSION.channel]: alpha })).toBe(5);
    expect(await latest(METRIC.backlogPerTask, { [DIMENSION.channel]: alpha })).toBe(5); // 0 running tasks count as 1
    expect(await latest(METRIC.backlog, { [DIMENSION.channel]: beta })).toBe(5);
    expect(await latest(METRIC.backlog, { [DIMENSION.channel]: beta, [DIMENSION.subQueue]: "high" })).toBe(4);
    expect(await latest(METRIC.backlog, { [DIMENSION.channel]: beta, [DIMENSION.subQueue]: "low" })).toBe(1);

    const listed = await cw.send(new ListMetricsCommand({ Namespace: METRICS_NAMESPACE }));
    const ours = (listed.Metrics ?? []).filter((m) => m.Dimensions?.some((d) => d.Name === DIMENSION.channel && d.Value?.startsWith(prefix)));
    const names = new Set(ours.map((m) => `${m.MetricName}:${m.Dimensions!.map((d) => d.Value).join("/")}`));
    expect(names).toEqual(
      new Set([`Backlog:${alpha}`, `BacklogPerTask:${alpha}`, `Backlog:${beta}`, `BacklogPerTask:${beta}`, `Backlog:${beta}/high`, `Backlog:${beta}/low`]),
    );
  });
});
