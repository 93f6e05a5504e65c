// Removal markers for SQS: a queue cannot delete a message by job id, so `remove(jobId)` writes an item
// `removed#<jobId>` to the job-state table and every lease drops the messages of marked jobs (one BatchGetItem
// per received batch, shared by the leases of one event-loop turn). A removed job id is dead for good: periodic
// occurrences and retries share the id of the job that was deleted, and nothing else reuses a snowflake.
import { BatchGetItemCommand, PutItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { awsErrorName } from "./clients.js";
import { KeyedBatcher } from "./batcher.js";
import { JOB_STATE_TABLE, QUEUE_SETTINGS } from "./resources.js";
import { missingTable } from "./errors.js";

const PK = JOB_STATE_TABLE.partitionKey;
const markerKey = (jobId: bigint | string) => `removed#${jobId}`;

export class RemovalMarkers {
  private readonly checks: KeyedBatcher<string, boolean>;

  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
  ) {
    this.checks = new KeyedBatcher((_key, ids) => this.lookup(ids), { maxEntries: 100 });
  }

  /** Mark the job removed; false when it was marked already. */
  async mark(jobId: bigint): Promise<boolean> {
    const expires = Math.ceil(Date.now() / 1000) + QUEUE_SETTINGS.messageRetentionSeconds + 3600;
    try {
      await this.dynamo.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { [PK]: { S: markerKey(jobId) }, removed_at: { N: String(Date.now()) }, [JOB_STATE_TABLE.ttlAttribute]: { N: String(expires) } },
          ConditionExpression: "attribute_not_exists(#pk)",
          ExpressionAttributeNames: { "#pk": PK },
        }),
      );
      return true;
    } catch (e) {
      if (awsErrorName(e) === "ConditionalCheckFailedException") return false;
      if (awsErrorName(e) === "ResourceNotFoundException") throw missingTable(this.table);
      throw e;
    }
  }

  /** Is the job marked removed? (Batched with the other checks of this turn.) */
  isRemoved(jobId: bigint): Promise<boolean> {
    return this.checks.call("", jobId.toString());
  }

  private async lookup(ids: string[]): Promise<boolean[]> {
    const found = new Set<string>();
    let keys: Record<string, { S: string }>[] = [...new Set(ids)].map((id) => ({ [PK]: { S: markerKey(id) } }));
    for (let attempt = 0; keys.length > 0; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      let out;
      try {
        out = await this.dynamo.send(new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: keys, ProjectionExpression: "#pk", ExpressionAttributeNames: { "#pk": PK } } } }));
      } catch (e) {
        if (awsErrorName(e) === "ResourceNotFoundException") throw missingTable(this.table);
        throw e;
      }
      for (const item of out.Responses?.[this.table] ?? []) found.add(item[PK]!.S!);
      keys = (out.UnprocessedKeys?.[this.table]?.Keys ?? []) as typeof keys;
    }
    return ids.map((id) => found.has(markerKey(id)));
  }
}
