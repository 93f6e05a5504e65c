// Shared glue for the AWS-shape process tests (STORAGE_TYPE=Aws: SQS + DynamoDB on the run's moto server, MySQL +
// Redis as in Scalable): the Scalable harness (clusters, clients, logs printed on failure, teardown) plus what
// these tests touch on the AWS side directly: a channel's queues, the job-state table, raw SQS messages.
import { GetQueueAttributesCommand, GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { afterAll } from "vitest";
import type { AwsClients } from "../../worker-container/src/adapters/aws/clients.js";
import { ensureQueueWithDlq } from "../../worker-container/src/adapters/aws/provision.js";
import { PRIORITIES, sqsQueueName } from "../../worker-container/src/core/channel_config.js";
import { Priority } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { testAwsClients } from "../helpers/aws.js";

export * from "../scalable/support.js";

/** Clients for the run's local AWS endpoint, destroyed after the file. */
export function useAwsClients(): () => AwsClients {
  let clients: AwsClients | undefined;
  afterAll(() => clients?.destroy());
  return () => (clients ??= testAwsClients());
}

/** The names of a channel's queue of `priority` (default MEDIUM: jobs enqueued without a priority) and its DLQ. */
export function channelQueue(prefix: string, channel: string, priority: Priority = Priority.MEDIUM): { name: string; dlqName: string } {
  return { name: sqsQueueName(prefix, channel, priority), dlqName: sqsQueueName(prefix, channel, priority, true) };
}

/**
 * Creates a channel's queues (every priority, each with its DLQ) before the processes start, with a chosen
 * redrive count: every priority, because a process that finds one of them missing creates all three with its own
 * maxReceiveCount (AWS_CREATE_MISSING_QUEUES) and would overwrite the redrive policy of the others.
 */
export async function createChannelQueues(clients: AwsClients, prefix: string, channel: string, maxReceiveCount: number): Promise<void> {
  for (const priority of PRIORITIES) await ensureQueueWithDlq(clients.sqs, { ...channelQueue(prefix, channel, priority), maxReceiveCount });
}

export async function queueUrl(clients: AwsClients, name: string): Promise<string> {
  return (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
}

/** Messages in a queue: waiting, delayed and in flight (moto's counts are exact). */
export async function messagesIn(clients: AwsClients, name: string): Promise<number> {
  const a = (
    await clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: await queueUrl(clients, name),
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"],
      }),
    )
  ).Attributes!;
  return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesDelayed) + Number(a.ApproximateNumberOfMessagesNotVisible);
}


/** A job script that marks its start and end in `file` around `body` ($PPID of the job's shell is the worker process). */
export function markedScript(file: string, mark: string, body: string): string {
  return `echo "S ${mark} $PPID" >> '${file}'; ${body}; echo "E ${mark} $PPID" >> '${file}'`;
}
