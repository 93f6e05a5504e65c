// Creating the AWS resources of `resources.ts` through the APIs (not CloudFormation): `jobworkerp aws bootstrap`
// against a local endpoint, and tests. Idempotent: an existing queue keeps its URL and gets its attributes
// (redrive, SSE) set again; an existing table is left as it is.
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, SetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { awsErrorName } from "./clients.js";
import { JOB_STATE_TABLE, QUEUE_SETTINGS } from "./resources.js";

export interface Provisioned {
  kind: "queue" | "table" | "schedule";
  name: string;
  /** false: it existed already (its settings were refreshed where that is possible). */
  created: boolean;
}

async function queueUrl(sqs: SQSClient, name: string): Promise<string | undefined> {
  try {
    return (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
  } catch (e) {
    if (awsErrorName(e) === "QueueDoesNotExist" || awsErrorName(e) === "AWS.SimpleQueueService.NonExistentQueue") return undefined;
    throw e;
  }
}

async function ensureQueue(sqs: SQSClient, name: string, attributes: Record<string, string>): Promise<{ url: string; created: boolean }> {
  const existing = await queueUrl(sqs, name);
  if (existing) {
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl: existing, Attributes: attributes }));
    return { url: existing, created: false };
  }
  const out = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  return { url: out.QueueUrl!, created: true };
}

/** A queue and its dead-letter queue, redriven after `maxReceiveCount` deliveries. */
export async function ensureQueueWithDlq(sqs: SQSClient, q: { name: string; dlqName: string; maxReceiveCount: number }): Promise<Provisioned[]> {
  const base = {
    MessageRetentionPeriod: String(QUEUE_SETTINGS.messageRetentionSeconds),
    SqsManagedSseEnabled: "true",
  };
  const dlq = await ensureQueue(sqs, q.dlqName, base);
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.url, AttributeNames: ["QueueArn"] }))).Attributes?.QueueArn;
  if (!arn) throw new Error(`no ARN for the dead-letter queue ${q.dlqName}`);
  const main = await ensureQueue(sqs, q.name, {
    ...base,
    VisibilityTimeout: String(QUEUE_SETTINGS.visibilityTimeoutSeconds),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: q.maxReceiveCount }),
  });
  return [
    { kind: "queue", name: q.dlqName, created: dlq.created },
    { kind: "queue", name: q.name, created: main.created },
  ];
}

/** The job-state table with its status index and TTL. Waits until the table is ACTIVE. */
export async function ensureJobStateTable(dynamo: DynamoDBClient, prefix: string): Promise<Provisioned> {
  const t = JOB_STATE_TABLE;
  const name = t.name(prefix);
  const ix = t.statusIndex;
  let created = false;
  try {
    await dynamo.send(new DescribeTableCommand({ TableName: name }));
  } catch (e) {
    if (awsErrorName(e) !== "ResourceNotFoundException") throw e;
    try {
      await dynamo.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: [
            { AttributeName: t.partitionKey, AttributeType: "S" },
            { AttributeName: ix.partitionKey, AttributeType: ix.partitionKeyType },
            { AttributeName: ix.sortKey, AttributeType: ix.sortKeyType },
          ],
          KeySchema: [{ AttributeName: t.partitionKey, KeyType: "HASH" }],
          GlobalSecondaryIndexes: [
            {
              IndexName: ix.name,
              KeySchema: [
                { AttributeName: ix.partitionKey, KeyType: "HASH" },
                { AttributeName: ix.sortKey, KeyType: "RANGE" },
              ],
              Projection: { ProjectionType: ix.projection, NonKeyAttributes: [...ix.nonKeyAttributes] },
            },
          ],
          SSESpecification: { Enabled: true },
        }),
      );
      created = true;
    } catch (err) {
      if (awsErrorName(err) !== "ResourceInUseException") throw err; // created concurrently: fine
    }
    await waitUntilTableExists({ client: dynamo, maxWaitTime: 120, minDelay: 1, maxDelay: 5 }, { TableName: name });
  }
  const ttl = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: name }));
  const status = ttl.TimeToLiveDescription?.TimeToLiveStatus;
  if (status !== "ENABLED" && status !== "ENABLING") {
    await dynamo.send(new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: t.ttlAttribute, Enabled: true } }));
  }
  return { kind: "table", name, created };
}
