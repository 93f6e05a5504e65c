// One channel's queues: per sub-queue (or the channel itself) and priority, a queue and its dead-letter queue
// with redrive, SSE, TLS-only access and the runtime's retention and visibility (names and settings from the
// runtime's resources.ts). Alarms: any message in a DLQ, and the oldest message of a queue waiting too long.
import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { channelQueues, QUEUE_SETTINGS } from "../../worker-container/src/adapters/aws/resources.js";
import { Priority } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import type { ChannelSpec } from "../../worker-container/src/core/channel_config.js";
import { justify } from "../nag.js";

/** Lambda timeout of the DLQ recorder; a dead-letter queue hides a message 6 times that long (AWS's advice for event sources). */
export const DLQ_RECORDER_TIMEOUT_SECONDS = 60;

export interface ChannelQueuesProps {
  resourcePrefix: string;
  channel: ChannelSpec;
  oldestMessageAlarmSeconds: number;
  /** Where alarms notify (an SNS action), if anywhere. */
  alarmAction?: cloudwatch.IAlarmAction;
}

export interface QueuePair {
  /** The channel (or `channel:sub-queue`) and priority the queue serves. */
  channel: string;
  priority: string;
  queue: sqs.Queue;
  dlq: sqs.Queue;
}

export class ChannelQueues extends Construct {
  readonly pairs: QueuePair[];

  constructor(scope: Construct, id: string, props: ChannelQueuesProps) {
    super(scope, id);
    const retention = Duration.seconds(QUEUE_SETTINGS.messageRetentionSeconds);
    this.pairs = channelQueues(props.resourcePrefix, props.channel).map((q) => {
      const suffix = q.name.slice(props.resourcePrefix.length + 1); // unique within the channel and readable
      const dlq = new sqs.Queue(this, `Dlq-${suffix}`, {
        queueName: q.dlqName,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: retention,
        visibilityTimeout: Duration.seconds(6 * DLQ_RECORDER_TIMEOUT_SECONDS),
      });
      justify(dlq, [{ id: "AwsSolutions-SQS3", reason: "This queue is itself a dead-letter queue (the redrive target of its job queue)." }]);
      const queue = new sqs.Queue(this, `Queue-${suffix}`, {
        queueName: q.name,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: retention,
        visibilityTimeout: Duration.seconds(QUEUE_SETTINGS.visibilityTimeoutSeconds),
        receiveMessageWaitTime: Duration.seconds(20),
        deadLetterQueue: { queue: dlq, maxReceiveCount: props.channel.maxReceiveCount },
      });
      const alarms = [
        // visible + in flight: the DLQ recorder Lambda receives dead letters at once, so "visible" alone stays ~0
        new cloudwatch.MathExpression({
          expression: "visible + inflight",
          usingMetrics: {
            visible: dlq.metricApproximateNumberOfMessagesVisible({ statistic: "Maximum" }),
            inflight: dlq.metricApproximateNumberOfMessagesNotVisible({ statistic: "Maximum" }),
          },
          period: Duration.minutes(1),
          label: `${q.dlqName} depth`,
        }).createAlarm(this, `DlqAlarm-${suffix}`, {
          alarmDescription: `Jobs of ${q.channel} reached the dead-letter queue ${q.dlqName}`,
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: "Maximum" }).createAlarm(this, `AgeAlarm-${suffix}`, {
          alarmDescription: `The oldest job in ${q.name} has waited more than ${props.oldestMessageAlarmSeconds} s`,
          threshold: props.oldestMessageAlarmSeconds,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 5,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      ];
      if (props.alarmAction) for (const a of alarms) a.addAlarmAction(props.alarmAction);
      return { channel: q.channel, priority: Priority[q.priority], queue, dlq };
    });
  }

  get queues(): sqs.Queue[] {
    return this.pairs.map((p) => p.queue);
  }

  get dlqs(): sqs.Queue[] {
    return this.pairs.map((p) => p.dlq);
  }
}
