// Names and shapes of the AWS resources of one deployment, shared by the runtime adapters, `jobworkerp aws
// bootstrap` (local endpoints) and the CDK app, so the three can never disagree.
import { Priority } from "../../gen/jobworkerp/data/common_pb.js";
import { PRIORITIES, sqsQueueName, type ChannelSpec } from "../../core/channel_config.js";
import { DEFAULT_CHANNEL } from "../../core/workers.js";

export const DEFAULT_RESOURCE_PREFIX = "jobworkerp";

/**
 * The DynamoDB job-state table: one item per key `pk` (string); TTL on `expires_at` (epoch seconds). Items:
 * `job#<id>` status entries, `uniq#<worker>#<key>` uniq_key reservations, `removed#<id>` queue removal markers.
 */
export const JOB_STATE_TABLE = {
  name: (prefix: string) => `${prefix}-job-state`,
  partitionKey: "pk",
  ttlAttribute: "expires_at",
  /**
   * Status entries by processing status, ordered by job id (a snowflake, so by enqueue time): JobProcessingStatus
   * Find*ByCondition and counts. `gsi_status` (string) is `<status>#<shard>` (shard = job id mod `shards`, so one
   * status is not one hot index partition); `gsi_time` (number) is the job id. Only the attributes the filters
   * read are projected, so an index write stays one write unit whatever the job's size.
   */
  statusIndex: {
    name: "by_status",
    partitionKey: "gsi_status",
    partitionKeyType: "S",
    sortKey: "gsi_time",
    sortKeyType: "N",
    projection: "INCLUDE",
    nonKeyAttributes: ["worker_id", "channel", "start_time"],
    shards: 8,
  },
} as const;

/** Queue settings shared by bootstrap and the CDK app (SSE with SQS-managed keys on every queue). */
export const QUEUE_SETTINGS = {
  /** Longest SQS allows: a queued job (and its removal marker) lives this long. */
  messageRetentionSeconds: 1_209_600,
  /** Default visibility (receives pass their own lease length; this only covers other consumers). */
  visibilityTimeoutSeconds: 30,
} as const;

/**
 * Every queue a channel needs, per priority and each with its DLQ: the channel's own, and one per sub-queue (the
 * workers of a weighted channel lease from its sub-queues and from the bare channel: core/weighted.ts).
 */
export function channelQueues(prefix: string, spec: ChannelSpec): { channel: string; priority: Priority; name: string; dlqName: string }[] {
  const channels = [spec.name, ...spec.subQueues.map((s) => `${spec.name}:${s.name}`)];
  return channels.flatMap((channel) =>
    PRIORITIES.map((priority) => ({ channel, priority, name: sqsQueueName(prefix, channel, priority), dlqName: sqsQueueName(prefix, channel, priority, true) })),
  );
}

/** ECS service name of a channel's workers (scale-from-zero nudges it; CDK names it so). */
export function workerServiceName(prefix: string, channel: string): string {
  const safe = (channel === DEFAULT_CHANNEL ? "default" : channel).replace(/[^A-Za-z0-9_-]/g, "-");
  return `${prefix}-worker-${safe}`.slice(0, 255);
}
