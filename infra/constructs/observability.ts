// The deployment's CloudWatch dashboard: per channel, queue depth and backlog, age of the oldest job, running vs
// wanted tasks, and jobs dead-lettered (failures that exhausted their deliveries); then the front and the Lambdas.
// Also the alarm topic (e-mail when `alarmEmail` is given).
import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cwactions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as ecs from "aws-cdk-lib/aws-ecs";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import { DIMENSION, METRIC, METRICS_NAMESPACE } from "../../worker-container/src/adapters/aws/backlog_metrics.js";
import { justify } from "../nag.js";
import type { ChannelWorker } from "./channel-worker.js";
import type { ChannelQueues } from "./queues.js";

export class AlarmTopic extends Construct {
  readonly topic: sns.Topic;
  readonly action: cloudwatch.IAlarmAction;

  constructor(scope: Construct, id: string, props: { email?: string }) {
    super(scope, id);
    this.topic = new sns.Topic(this, "Topic", { displayName: "jobworkerp alarms", enforceSSL: true });
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
    justify(this.topic, [
      { id: "AwsSolutions-SNS2", reason: "Alarm notifications carry alarm names and states only; CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, and a customer key would cost more than the data is worth." },
    ]);
    this.action = new cwactions.SnsAction(this.topic);
  }
}

export interface DashboardProps {
  name: string;
  clusterName: string;
  channels: { worker: ChannelWorker; queues: ChannelQueues }[];
  frontService: ecs.FargateService;
  functions: lambda.IFunction[];
}

const PERIOD = Duration.minutes(1);

export class Dashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    this.dashboard = new cloudwatch.Dashboard(this, "Dashboard", { dashboardName: props.name, defaultInterval: Duration.hours(3) });
    for (const { worker, queues } of props.channels) {
      const channel = worker.channel.name;
      // ids must be unique within one graph: each sum names its metrics with its own prefix
      const sum = (id: string, label: string, metrics: cloudwatch.IMetric[]) =>
        new cloudwatch.MathExpression({
          expression: `SUM([${metrics.map((_, i) => `${id}${i}`).join(",")}])`,
          usingMetrics: Object.fromEntries(metrics.map((m, i) => [`${id}${i}`, m])),
          label,
          period: PERIOD,
        });
      const insights = (metricName: string) =>
        new cloudwatch.Metric({
          namespace: "ECS/ContainerInsights",
          metricName,
          dimensionsMap: { ClusterName: props.clusterName, ServiceName: worker.serviceName },
          statistic: "Maximum",
          period: PERIOD,
          label: metricName.replace("TaskCount", " tasks"),
        });
      this.dashboard.addWidgets(
        new cloudwatch.TextWidget({ markdown: `### Channel \`${channel}\` — service \`${worker.serviceName}\``, width: 24, height: 1 }),
        new cloudwatch.GraphWidget({
          title: `${channel}: jobs queued`,
          width: 6,
          left: [
            sum("visible", "waiting (visible)", queues.queues.map((q) => q.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: "Maximum" }))),
            new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName: METRIC.backlog, dimensionsMap: { [DIMENSION.channel]: worker.channel.name }, statistic: "Maximum", period: PERIOD, label: "backlog (waiting + running)" }),
          ],
        }),
        new cloudwatch.GraphWidget({
          title: `${channel}: age of the oldest job (s)`,
          width: 6,
          left: queues.queues.map((q) => q.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: "Maximum", label: q.queueName })),
        }),
        new cloudwatch.GraphWidget({
          title: `${channel}: tasks`,
          width: 6,
          left: [insights("RunningTaskCount"), insights("DesiredTaskCount")],
          right: [new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName: METRIC.backlogPerTask, dimensionsMap: { [DIMENSION.channel]: worker.channel.name }, statistic: "Average", period: PERIOD, label: "backlog per task" })],
        }),
        new cloudwatch.GraphWidget({
          title: `${channel}: jobs dead-lettered`,
          width: 6,
          left: [
            sum("received", "dead letters received", queues.dlqs.map((q) => q.metricNumberOfMessagesReceived({ period: PERIOD, statistic: "Sum" }))),
            sum("depth", "in dead-letter queues", queues.dlqs.map((q) => q.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: "Maximum" }))),
          ],
        }),
      );
    }
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: "front: CPU and memory (%)",
        width: 12,
        left: [props.frontService.metricCpuUtilization({ period: PERIOD }), props.frontService.metricMemoryUtilization({ period: PERIOD })],
      }),
      new cloudwatch.GraphWidget({
        title: "Lambdas: errors",
        width: 12,
        left: props.functions.map((f) => f.metricErrors({ period: PERIOD, label: f.node.id })),
      }),
    );
  }
}
