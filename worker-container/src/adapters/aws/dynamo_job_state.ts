// JobState in DynamoDB (AWS mode). One item per job (`job#<id>`) in the job-state table (resources.ts); every
// transition is ONE conditional write, so a worker whose lease ran out cannot finish over a newer attempt:
//   setPending          PutItem (batched: BatchWriteItem, 25 a request, for the enqueues of one event-loop turn)
//   claim               UpdateItem token = token + 1, unless CANCELLING (a second, fuller one creates a missing entry)
//   markWaitResult /    UpdateItem conditional on the token (or none: see HELD)
//   markPendingForRetry
//   finish              DeleteItem conditional on the token (or none)
//   requestCancel       UpdateItem → CANCELLING, returning the status before
// Fencing tokens: a new entry's first token is the current time in microseconds, so a token of an earlier entry
// of the same job (a periodic job's previous occurrence, a finished attempt) is never reused.
// Find/count by condition query the sparse `by_status` index (eventually consistent), sharded per status so one
// status is not one hot partition; filters on worker, channel and start time run on projected attributes, then
// the page's items are read in full (BatchGetItem).
// uniq_key reservations are items `uniq#<worker>#<key>` written with attribute_not_exists (or held by the same job).
// Entries expire (TTL) ttlMs after their last write (plus the job's timeout while it runs), as in Redis; finished
// entries are deleted. Jobs bigger than `maxStoredJobBytes` are kept without their args (DynamoDB items are
// billed per KB and capped at 400 KB); `args_omitted` says so.
import { createHash } from "node:crypto";
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type QueryCommandInput,
} from "@aws-sdk/client-dynamodb";
import { clone, fromBinary, toBinary } from "@bufbuild/protobuf";
import { JobProcessingStatus, type Priority } from "../../gen/jobworkerp/data/common_pb.js";
import { JobSchema, type Job } from "../../gen/jobworkerp/data/job_pb.js";
import type { Claim, JobState, JobStatusEntry, JobStatusFilter } from "../../core/ports.js";
import { awsErrorName } from "./clients.js";
import { KeyedBatcher } from "./batcher.js";
import { missingTable } from "./errors.js";
import { JOB_STATE_TABLE } from "./resources.js";

export interface DynamoJobStateOptions {
  dynamo: DynamoDBClient;
  /** Resource name prefix (AWS_RESOURCE_PREFIX); the table is JOB_STATE_TABLE.name(prefix) unless tableName is given. */
  resourcePrefix: string;
  tableName?: string;
  /** Lifetime of an entry after its last write (default 24 h). */
  ttlMs?: number;
  /** Lifetime of a uniq_key reservation nobody releases (default 14 days, SQS's longest retention). */
  uniqTtlMs?: number;
  /** Jobs above this size are stored without args (default 32 KiB). */
  maxStoredJobBytes?: number;
}

type Item = Record<string, AttributeValue>;

const { PENDING, RUNNING, WAIT_RESULT, CANCELLING } = JobProcessingStatus;
const STATUSES = [PENDING, RUNNING, WAIT_RESULT, CANCELLING] as const;
const IX = JOB_STATE_TABLE.statusIndex;
const PK = JOB_STATE_TABLE.partitionKey;
const TTL = JOB_STATE_TABLE.ttlAttribute;
const MAX_TIMEOUT_EXTENSION_MS = 400 * 24 * 60 * 60 * 1000;

const jobKey = (id: bigint) => `job#${id}`;
/**
 * The entry is held by the claim with token `:t`: its token, or none (a setPending put over a claimed entry, i.e. a
 * periodic job's next occurrence queued while this one runs: the running claim may still finish, as it may with
 * the adapters that keep the token).
 */
const HELD = "attribute_exists(#pk) AND (#token = :t OR attribute_not_exists(#token))";
const n = (v: bigint | number) => ({ N: v.toString() });
const s = (v: string) => ({ S: v });
const gsiStatus = (status: JobProcessingStatus, jobId: bigint) => `${status}#${jobId % BigInt(IX.shards)}`;
const seconds = (ms: number) => Math.ceil(ms / 1000);

/** Names for every attribute an expression mentions (several are DynamoDB reserved words). */
const NAMES = {
  "#pk": PK,
  "#status": "status",
  "#token": "token",
  "#w": "worker_id",
  "#ch": "channel",
  "#pr": "priority",
  "#eq": "enqueue_time",
  "#pt": "pending_time",
  "#st": "start_time",
  "#str": "streamable",
  "#bc": "broadcast",
  "#u": "updated_at",
  "#job": "job",
  "#omit": "args_omitted",
  "#gs": IX.partitionKey,
  "#gt": IX.sortKey,
  "#exp": TTL,
  "#holder": "job_id",
};
type Name = keyof typeof NAMES;
/** Only the names an expression uses (DynamoDB rejects unused ones). */
function names(...exprs: (string | undefined)[]): Record<string, string> {
  const text = exprs.join(" ");
  const out: Record<string, string> = {};
  for (const k of Object.keys(NAMES) as Name[]) if (new RegExp(`${k}\\b`).test(text)) out[k] = NAMES[k];
  return out;
}

export class DynamoJobState implements JobState {
  private readonly dynamo: DynamoDBClient;
  readonly table: string;
  private readonly ttlMs: number;
  private readonly uniqTtlMs: number;
  private readonly maxStoredJobBytes: number;
  private readonly pendings: KeyedBatcher<Item, void>;

  constructor(opts: DynamoJobStateOptions) {
    this.dynamo = opts.dynamo;
    this.table = opts.tableName ?? JOB_STATE_TABLE.name(opts.resourcePrefix);
    this.ttlMs = opts.ttlMs ?? 24 * 60 * 60 * 1000;
    this.uniqTtlMs = opts.uniqTtlMs ?? 14 * 24 * 60 * 60 * 1000;
    this.maxStoredJobBytes = opts.maxStoredJobBytes ?? 32 * 1024;
    this.pendings = new KeyedBatcher((_k, items) => this.putBatch(items), { maxEntries: 25 });
  }

  private async send<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      if (awsErrorName(e) === "ResourceNotFoundException") throw missingTable(this.table);
      throw e;
    }
  }

  /** The job's bytes as stored: without args when too big. */
  private jobAttrs(job: Job): Item {
    let bytes = toBinary(JobSchema, job);
    if (bytes.length <= this.maxStoredJobBytes) return { job: { B: bytes } };
    const slim = clone(JobSchema, job);
    if (slim.data) slim.data.args = new Uint8Array();
    bytes = toBinary(JobSchema, slim);
    return { job: { B: bytes }, args_omitted: { BOOL: true } };
  }

  private entryItem(e: JobStatusEntry, status: JobProcessingStatus, expiresMs: number): Item {
    const item: Item = {
      [PK]: s(jobKey(e.jobId)),
      status: n(status),
      worker_id: s(e.workerId.toString()),
      channel: s(e.channel),
      priority: n(e.priority),
      enqueue_time: n(e.enqueueTime),
      streamable: { BOOL: e.isStreamable },
      broadcast: { BOOL: e.broadcastResults },
      updated_at: n(e.updatedAt),
      [IX.partitionKey]: s(gsiStatus(status, e.jobId)),
      [IX.sortKey]: n(e.jobId),
      [TTL]: n(seconds(expiresMs)),
      ...this.jobAttrs(e.job),
    };
    const pending = e.pendingTime ?? e.updatedAt;
    item.pending_time = n(pending);
    if (e.startTime !== undefined) item.start_time = n(e.startTime);
    return item;
  }

  // ------------------------------------------------------------------ transitions

  /**
   * A put (batched with the other setPendings of this turn). Over a claimed entry (a periodic job's next occurrence
   * is queued while the previous one runs under the same id) the put drops the token: the transitions below accept
   * a token-less entry from any claim, so that run still finishes, as with the other adapters.
   */
  setPending(entry: JobStatusEntry): Promise<void> {
    const item = this.entryItem(entry, PENDING, Date.now() + this.ttlMs);
    delete item.start_time;
    return this.pendings.call("", item);
  }

  private async putBatch(items: Item[]): Promise<void[]> {
    // one request may not name a key twice: the later put of a job wins, as it would one by one
    const byKey = new Map<string, Item>();
    for (const it of items) byKey.set(it[PK]!.S!, it);
    let requests = [...byKey.values()].map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
      if (attempt > 8) throw new Error(`DynamoDB kept ${requests.length} job-state writes unprocessed (throttled)`);
      const out = await this.send(this.dynamo.send(new BatchWriteItemCommand({ RequestItems: { [this.table]: requests } })));
      requests = (out.UnprocessedItems?.[this.table] ?? []) as typeof requests;
    }
    return items.map(() => undefined);
  }

  async claim(entry: JobStatusEntry, now: bigint): Promise<Claim | undefined> {
    const timeout = Number(entry.job.data?.timeout ?? 0n);
    const expires = Date.now() + this.ttlMs + Math.min(MAX_TIMEOUT_EXTENSION_MS, Math.max(0, timeout));
    const fresh = this.entryItem(entry, RUNNING, expires);
    // the token starts at the time in µs so it never repeats an old entry's
    const values: Item = {
      ":running": n(RUNNING),
      ":cancelling": n(CANCELLING),
      ":now": n(now),
      ":gs": s(gsiStatus(RUNNING, entry.jobId)),
      ":exp": fresh[TTL]!,
      ":base": n(Date.now() * 1000 + Math.floor(Math.random() * 1000)),
      ":one": n(1),
    };
    const sets = ["#status = :running", "#st = :now", "#u = :now", "#gs = :gs", "#exp = :exp", "#token = if_not_exists(#token, :base) + :one"];
    // the usual case: setPending wrote the entry, only the running fields change (a smaller update)
    const claimed = await this.claimUpdate(entry.jobId, sets, "attribute_exists(#pk) AND #status <> :cancelling", values);
    if (claimed) return claimed;
    // missing (a periodic occurrence after the previous one's finish, a lost setPending): created from `entry`;
    // CANCELLING: refused again
    const keep = ["#w", "#ch", "#pr", "#eq", "#pt", "#str", "#bc", "#job", "#gt"] as const;
    for (const k of keep) {
      const attr = NAMES[k];
      values[`:${attr}`] = fresh[attr]!;
      sets.push(`${k} = if_not_exists(${k}, :${attr})`);
    }
    if (fresh.args_omitted) {
      values[":omit"] = fresh.args_omitted;
      sets.push("#omit = if_not_exists(#omit, :omit)");
    }
    return this.claimUpdate(entry.jobId, sets, "attribute_not_exists(#pk) OR #status <> :cancelling", values);
  }

  /** The claim's update under `cond`; undefined when the condition fails. */
  private async claimUpdate(jobId: bigint, sets: string[], cond: string, values: Item): Promise<Claim | undefined> {
    const update = `SET ${sets.join(", ")}`;
    try {
      const out = await this.send(
        this.dynamo.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: { [PK]: s(jobKey(jobId)) },
            UpdateExpression: update,
            ConditionExpression: cond,
            ExpressionAttributeNames: names(update, cond),
            ExpressionAttributeValues: values,
            ReturnValues: "UPDATED_NEW",
          }),
        ),
      );
      return { token: Number(out.Attributes!.token!.N) };
    } catch (e) {
      if (awsErrorName(e) === "ConditionalCheckFailedException") return undefined;
      throw e;
    }
  }

  /** A conditional update of the claimed entry; false when the condition fails. */
  private async updateClaimed(jobId: bigint, update: string, cond: string, values: Item): Promise<boolean> {
    try {
      await this.send(
        this.dynamo.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: { [PK]: s(jobKey(jobId)) },
            UpdateExpression: update,
            ConditionExpression: cond,
            ExpressionAttributeNames: names(update, cond),
            ExpressionAttributeValues: values,
          }),
        ),
      );
      return true;
    } catch (e) {
      if (awsErrorName(e) === "ConditionalCheckFailedException") return false;
      throw e;
    }
  }

  async markWaitResult(jobId: bigint, claim: Claim): Promise<boolean> {
    const values = { ":t": n(claim.token), ":wait": n(WAIT_RESULT), ":cancelling": n(CANCELLING), ":gs": s(gsiStatus(WAIT_RESULT, jobId)) };
    if (await this.updateClaimed(jobId, "SET #status = :wait, #gs = :gs", `${HELD} AND #status <> :cancelling`, values)) return true;
    // still ours but CANCELLING: it stays so, and the holder goes on to finish it
    const e = await this.get(jobId);
    return e !== undefined && (e.token === claim.token || e.token === undefined);
  }

  async markPendingForRetry(jobId: bigint, claim: Claim, now: bigint): Promise<boolean> {
    const values = {
      ":t": n(claim.token),
      ":pending": n(PENDING),
      ":cancelling": n(CANCELLING),
      ":now": n(now),
      ":gs": s(gsiStatus(PENDING, jobId)),
      ":exp": n(seconds(Date.now() + this.ttlMs)),
    };
    return this.updateClaimed(jobId, "SET #status = :pending, #pt = :now, #u = :now, #gs = :gs, #exp = :exp", `${HELD} AND #status <> :cancelling`, values);
  }

  async finish(jobId: bigint, claim: Claim): Promise<boolean> {
    try {
      await this.send(
        this.dynamo.send(
          new DeleteItemCommand({
            TableName: this.table,
            Key: { [PK]: s(jobKey(jobId)) },
            ConditionExpression: HELD,
            ExpressionAttributeNames: names(HELD),
            ExpressionAttributeValues: { ":t": n(claim.token) },
          }),
        ),
      );
      return true;
    } catch (e) {
      if (awsErrorName(e) === "ConditionalCheckFailedException") return false;
      throw e;
    }
  }

  async remove(jobId: bigint): Promise<void> {
    await this.send(this.dynamo.send(new DeleteItemCommand({ TableName: this.table, Key: { [PK]: s(jobKey(jobId)) } })));
  }

  async requestCancel(jobId: bigint): Promise<JobProcessingStatus | undefined> {
    const update = "SET #status = :cancelling, #gs = :gs";
    const cond = "attribute_exists(#pk)";
    try {
      const out = await this.send(
        this.dynamo.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: { [PK]: s(jobKey(jobId)) },
            UpdateExpression: update,
            ConditionExpression: cond,
            ExpressionAttributeNames: names(update, cond),
            ExpressionAttributeValues: { ":cancelling": n(CANCELLING), ":gs": s(gsiStatus(CANCELLING, jobId)) },
            ReturnValues: "UPDATED_OLD",
          }),
        ),
      );
      return Number(out.Attributes?.status?.N ?? CANCELLING) as JobProcessingStatus;
    } catch (e) {
      if (awsErrorName(e) === "ConditionalCheckFailedException") return undefined;
      throw e;
    }
  }

  // ------------------------------------------------------------------ reads

  private async get(jobId: bigint): Promise<(JobStatusEntry & { token?: number }) | undefined> {
    const out = await this.send(this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: { [PK]: s(jobKey(jobId)) }, ConsistentRead: true })));
    return out.Item && !expired(out.Item) ? toEntry(out.Item) : undefined;
  }

  async find(jobId: bigint): Promise<JobStatusEntry | undefined> {
    const e = await this.get(jobId);
    if (e) delete e.token;
    return e;
  }

  /** The index query of one status shard, with the filter's conditions on projected attributes. */
  private query(status: JobProcessingStatus, shard: number, f: JobStatusFilter, select: "keys" | "count"): QueryCommandInput {
    const values: Item = { ":gs": s(`${status}#${shard}`) };
    const filters: string[] = [];
    if (f.workerId !== undefined) {
      values[":w"] = s(f.workerId.toString());
      filters.push("#w = :w");
    }
    if (f.channel !== undefined) {
      values[":ch"] = s(f.channel);
      filters.push("#ch = :ch");
    }
    if (f.minElapsedTimeMs !== undefined) {
      values[":started"] = n(BigInt(Date.now()) - BigInt(f.minElapsedTimeMs));
      filters.push("attribute_exists(#st) AND #st <= :started");
    }
    const key = "#gs = :gs";
    const filter = filters.length ? filters.join(" AND ") : undefined;
    return {
      TableName: this.table,
      IndexName: IX.name,
      KeyConditionExpression: key,
      FilterExpression: filter,
      ExpressionAttributeNames: names(key, filter, select === "keys" ? "#pk #gt" : ""),
      ExpressionAttributeValues: values,
      ScanIndexForward: !f.descending,
      ...(select === "count" ? { Select: "COUNT" as const } : { ProjectionExpression: "#pk, #gt" }),
    };
  }

  private statuses(f: JobStatusFilter): readonly JobProcessingStatus[] {
    return f.status !== undefined ? [f.status] : STATUSES;
  }

  private shards(): number[] {
    return Array.from({ length: IX.shards }, (_, i) => i);
  }

  async findAll(f: JobStatusFilter): Promise<JobStatusEntry[]> {
    const offset = f.offset ?? 0;
    const want = f.limit === undefined ? Infinity : offset + f.limit;
    if (want <= offset) return [];
    // the first `want` ids of every shard (each read in order), merged
    const parts = await Promise.all(
      this.statuses(f).flatMap((st) =>
        this.shards().map(async (shard) => {
          const ids: bigint[] = [];
          const input = this.query(st, shard, f, "keys");
          let start: Item | undefined;
          do {
            const out = await this.send(this.dynamo.send(new QueryCommand({ ...input, ExclusiveStartKey: start })));
            for (const it of out.Items ?? []) ids.push(BigInt(it[IX.sortKey]!.N!));
            start = out.LastEvaluatedKey;
          } while (start && ids.length < want);
          return ids;
        }),
      ),
    );
    const ids = parts.flat().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (f.descending) ids.reverse();
    const page = ids.slice(offset, want === Infinity ? undefined : want);
    const items = await this.batchGet(page.map(jobKey));
    const out: JobStatusEntry[] = [];
    for (const id of page) {
      const it = items.get(jobKey(id));
      if (!it || expired(it)) continue; // finished meanwhile
      const e = toEntry(it);
      // the index lags the table: keep the filter true for what is returned
      if (f.status !== undefined && e.status !== f.status) continue;
      delete e.token;
      out.push(e);
    }
    return out;
  }

  private async batchGet(keys: string[]): Promise<Map<string, Item>> {
    const found = new Map<string, Item>();
    for (let i = 0; i < keys.length; i += 100) {
      let req: Item[] = keys.slice(i, i + 100).map((k) => ({ [PK]: s(k) }));
      for (let attempt = 0; req.length > 0; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
        const out = await this.send(this.dynamo.send(new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: req, ConsistentRead: true } } })));
        for (const it of out.Responses?.[this.table] ?? []) found.set(it[PK]!.S!, it);
        req = (out.UnprocessedKeys?.[this.table]?.Keys ?? []) as Item[];
      }
    }
    return found;
  }

  async count(f: JobStatusFilter): Promise<Map<JobProcessingStatus, number>> {
    const counts = new Map<JobProcessingStatus, number>();
    await Promise.all(
      this.statuses(f).flatMap((st) =>
        this.shards().map(async (shard) => {
          const input = this.query(st, shard, f, "count");
          let start: Item | undefined;
          let c = 0;
          do {
            const out = await this.send(this.dynamo.send(new QueryCommand({ ...input, ExclusiveStartKey: start })));
            c += out.Count ?? 0;
            start = out.LastEvaluatedKey;
          } while (start);
          if (c > 0) counts.set(st, (counts.get(st) ?? 0) + c);
        }),
      ),
    );
    return counts;
  }

  // ------------------------------------------------------------------ uniq_key reservations

  private uniqKey(workerId: bigint, key: string): string {
    const k = `uniq#${workerId}#${key}`;
    return Buffer.byteLength(k) <= 1024 ? k : `uniq#${workerId}#sha256:${createHash("sha256").update(key).digest("hex")}`;
  }

  async reserveUniqKey(workerId: bigint, key: string, jobId: bigint): Promise<boolean> {
    const cond = "attribute_not_exists(#pk) OR #holder = :j OR #exp < :now";
    try {
      await this.send(
        this.dynamo.send(
          new PutItemCommand({
            TableName: this.table,
            Item: { [PK]: s(this.uniqKey(workerId, key)), job_id: s(jobId.toString()), [TTL]: n(seconds(Date.now() + this.uniqTtlMs)) },
            ConditionExpression: cond,
            ExpressionAttributeNames: names(cond),
            ExpressionAttributeValues: { ":j": s(jobId.toString()), ":now": n(Math.floor(Date.now() / 1000)) },
          }),
        ),
      );
      return true;
    } catch (e) {
      if (awsErrorName(e) === "ConditionalCheckFailedException") return false;
      throw e;
    }
  }

  async releaseUniqKey(workerId: bigint, key: string, jobId: bigint): Promise<void> {
    try {
      await this.send(
        this.dynamo.send(
          new DeleteItemCommand({
            TableName: this.table,
            Key: { [PK]: s(this.uniqKey(workerId, key)) },
            ConditionExpression: "#holder = :j",
            ExpressionAttributeNames: { "#holder": "job_id" },
            ExpressionAttributeValues: { ":j": s(jobId.toString()) },
          }),
        ),
      );
    } catch (e) {
      if (awsErrorName(e) !== "ConditionalCheckFailedException") throw e; // not the holder: nothing to do
    }
  }

  async uniqKeyHolder(workerId: bigint, key: string): Promise<bigint | undefined> {
    const out = await this.send(this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: { [PK]: s(this.uniqKey(workerId, key)) }, ConsistentRead: true })));
    if (!out.Item || expired(out.Item)) return undefined;
    return BigInt(out.Item.job_id!.S!);
  }
}

/** TTL deletion lags (up to days): an expired item is treated as gone. */
function expired(it: Item): boolean {
  const exp = it[TTL]?.N;
  return exp !== undefined && Number(exp) * 1000 < Date.now();
}

function toEntry(it: Item): JobStatusEntry & { token?: number } {
  const big = (k: string) => (it[k]?.N !== undefined ? BigInt(it[k]!.N!) : undefined);
  const e: JobStatusEntry & { token?: number } = {
    jobId: BigInt(it[IX.sortKey]!.N!),
    status: Number(it.status!.N) as JobProcessingStatus,
    workerId: BigInt(it.worker_id!.S!),
    channel: it.channel!.S!,
    priority: Number(it.priority!.N) as Priority,
    enqueueTime: big("enqueue_time")!,
    pendingTime: big("pending_time"),
    startTime: big("start_time"),
    isStreamable: it.streamable?.BOOL ?? false,
    broadcastResults: it.broadcast?.BOOL ?? false,
    updatedAt: big("updated_at")!,
    job: fromBinary(JobSchema, it.job!.B!),
  };
  if (it.token?.N !== undefined) e.token = Number(it.token.N);
  return e;
}
