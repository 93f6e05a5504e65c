// Names and shapes of the AWS resources of one deployment, shared by the runtime adapters, `jobworkerp aws
// bootstrap` (local endpoints) and the CDK app, so the three can never disagree.
import { Priority } from "../../gen/jobworkerp/data/common_pb.js";
import { PRIORITIES, sqsQueueName, type ChannelSpec } from "../../core/channel_config.js";
import { DEFAULT_CHANNEL } from "../../core/workers.js";

export const DEFAULT_RESOURCE_PREFIX = "jobworkerp";

/** The DynamoDB job-state table: one item per key `pk`; TTL on `expires_at` (epoch seconds). */
export const JOB_STATE_TABLE = {
  name: (prefix: string) => `${prefix}-job-state`,
  partitionKey: "pk",
  ttlAttribute: "expires_at",
  /** Status entries by processing status, newest enqueue last: JobProcessingStatus Find*ByCondition and counts. */
  statusIndex: { name: "by_status", partitionKey: "gsi_status", sortKey: "gsi_time" },
} as const;

/** Every queue a channel needs: one per sub-queue (or the channel itself) and priority, each with its DLQ. */
export function channelQueues(prefix: string, spec: ChannelSpec): { channel: string; priority: Priority; name: string; dlqName: string }[] {
  const channels = spec.subQueues.length ? spec.subQueues.map((s) => `${spec.name}:${s.name}`) : [spec.name];
  return channels.flatMap((channel) =>
    PRIORITIES.map((priority) => ({ channel, priority, name: sqsQueueName(prefix, channel, priority), dlqName: sqsQueueName(prefix, channel, priority, true) })),
  );
}

/** ECS service name of a channel's workers (scale-from-zero nudges it; CDK names it so). */
export function workerServiceName(prefix: string, channel: string): string {
  const safe = (channel === DEFAULT_CHANNEL ? "default" : channel).replace(/[^A-Za-z0-9_-]/g, "-");
  return `${prefix}-worker-${safe}`.slice(0, 255);
}
