// The autoscaling signal of the AWS shape: per channel, the jobs waiting or running in its SQS queues and that
// number per running ECS task, published to CloudWatch (namespace "Jobworkerp") every minute by the metrics
// Lambda. The CDK app's target tracking scales each channel's worker service on BacklogPerTask.
import { PutMetricDataCommand, type CloudWatchClient, type MetricDatum } from "@aws-sdk/client-cloudwatch";
import { DescribeServicesCommand, type ECSClient } from "@aws-sdk/client-ecs";
import { GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { splitSubQueue, type ChannelSpec } from "../../core/channel_config.js";
import { channelQueues, workerServiceName } from "./resources.js";

export const METRICS_NAMESPACE = "Jobworkerp";
export const METRIC = { backlog: "Backlog", backlogPerTask: "BacklogPerTask" } as const;
/** Dimension of every metric: the channel's name (as in the channels config); sub-queues add SubQueue. */
export const DIMENSION = { channel: "Channel", subQueue: "SubQueue" } as const;

export interface ChannelBacklog {
  channel: string;
  /** Visible + in-flight messages over the channel's queues (every priority and sub-queue). */
  backlog: number;
  /** Per sub-queue (empty when the channel has none). */
  subQueues: { name: string; backlog: number }[];
  runningTasks: number;
  /** backlog / max(1, runningTasks). */
  backlogPerTask: number;
}

export interface BacklogOptions {
  prefix: string;
  cluster: string;
  channels: readonly ChannelSpec[];
  /**
   * A channel whose queues or service cannot be read is left out of the measurement (no data rather than a false
   * 0 that would scale its service in) and reported here.
   */
  onError?: (e: unknown, what: string) => void;
}

/** Reads the channels' queues and services; queue URLs are kept across calls (warm Lambda invocations). */
export class BacklogMeter {
  private readonly urls = new Map<string, string>();

  constructor(
    private readonly sqs: SQSClient,
    private readonly ecs: ECSClient,
    private readonly opts: BacklogOptions,
  ) {}

  async measure(): Promise<ChannelBacklog[]> {
    const running = await this.runningTasks();
    const measured = await Promise.all(
      this.opts.channels.map(async (spec): Promise<ChannelBacklog | undefined> => {
        const tasks = running.get(workerServiceName(this.opts.prefix, spec.name));
        if (tasks === undefined) return undefined;
        const queues = channelQueues(this.opts.prefix, spec);
        const counts = await Promise.all(queues.map((q) => this.messages(q.name)));
        if (counts.some((n) => n === undefined)) return undefined;
        const bySub = new Map<string, number>();
        let backlog = 0;
        queues.forEach((q, i) => {
          backlog += counts[i]!;
          const sub = splitSubQueue(q.channel).subQueue;
          if (spec.subQueues.length && sub !== undefined) bySub.set(sub, (bySub.get(sub) ?? 0) + counts[i]!);
        });
        return {
          channel: spec.name,
          backlog,
          subQueues: [...bySub].map(([name, n]) => ({ name, backlog: n })),
          runningTasks: tasks,
          backlogPerTask: backlog / Math.max(1, tasks),
        };
      }),
    );
    return measured.filter((m): m is ChannelBacklog => m !== undefined);
  }

  /** Visible + in-flight messages of one queue (undefined when it cannot be read). */
  private async messages(name: string): Promise<number | undefined> {
    try {
      let url = this.urls.get(name);
      if (!url) {
        url = (await this.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
        this.urls.set(name, url);
      }
      const a = (
        await this.sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
        )
      ).Attributes;
      return Number(a?.ApproximateNumberOfMessages ?? 0) + Number(a?.ApproximateNumberOfMessagesNotVisible ?? 0);
    } catch (e) {
      this.urls.delete(name);
      this.opts.onError?.(e, `queue ${name}`);
      return undefined;
    }
  }

  /** Running tasks by service name (DescribeServices takes 10 services a call); a missing service is reported. */
  private async runningTasks(): Promise<Map<string, number>> {
    const names = this.opts.channels.map((c) => workerServiceName(this.opts.prefix, c.name));
    const out = new Map<string, number>();
    for (let i = 0; i < names.length; i += 10) {
      const batch = names.slice(i, i + 10);
      try {
        const r = await this.ecs.send(new DescribeServicesCommand({ cluster: this.opts.cluster, services: batch }));
        for (const s of r.services ?? []) if (s.serviceName) out.set(s.serviceName, s.runningCount ?? 0);
        for (const f of r.failures ?? []) this.opts.onError?.(new Error(`${f.arn}: ${f.reason}`), "service");
      } catch (e) {
        this.opts.onError?.(e, `services ${batch.join(", ")}`);
      }
    }
    return out;
  }
}

/** The CloudWatch data of a measurement: Backlog and BacklogPerTask per channel, Backlog per sub-queue. */
export function backlogMetricData(samples: readonly ChannelBacklog[], at: Date): MetricDatum[] {
  return samples.flatMap((s) => {
    const channel = { Name: DIMENSION.channel, Value: s.channel };
    return [
      { MetricName: METRIC.backlog, Dimensions: [channel], Value: s.backlog, Unit: "Count" as const, Timestamp: at },
      { MetricName: METRIC.backlogPerTask, Dimensions: [channel], Value: s.backlogPerTask, Unit: "Count" as const, Timestamp: at },
      ...s.subQueues.map((q) => ({
        MetricName: METRIC.backlog,
        Dimensions: [channel, { Name: DIMENSION.subQueue, Value: q.name }],
        Value: q.backlog,
        Unit: "Count" as const,
        Timestamp: at,
      })),
    ];
  });
}

/** PutMetricData in requests of at most 500 data. */
export async function publishBacklog(cw: CloudWatchClient, samples: readonly ChannelBacklog[], at = new Date()): Promise<number> {
  const data = backlogMetricData(samples, at);
  for (let i = 0; i < data.length; i += 500) {
    await cw.send(new PutMetricDataCommand({ Namespace: METRICS_NAMESPACE, MetricData: data.slice(i, i + 500) }));
  }
  return data.length;
}
