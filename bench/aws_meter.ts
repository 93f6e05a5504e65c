// A counting HTTP proxy in front of a local AWS endpoint (moto server), for `npm run bench:aws`.
//
// The processes under test get the proxy's URL as AWS_ENDPOINT_URL, so every call they make passes through here and
// is tallied by service and operation (X-Amz-Target for SQS's JSON protocol and DynamoDB; the credential scope and
// the URL otherwise) — across processes, and with no hook in the runtime. Beside plain request counts it works out
// what AWS bills for each request:
//  - SQS: one request per started 64 KiB of payload (message bodies sent or received), batches included;
//  - DynamoDB on demand: write request units (1 per started KB of the larger of the item before and after the write,
//    conditional failures included), write units of the `by_status` index (an index-key change is a delete plus a
//    put), read request units (per started 4 KB per item, half for eventually consistent reads; a missing item
//    costs the minimum). Item sizes follow DynamoDB's sizing rules, from the items the proxy saw written: it keeps a
//    shadow of every item's attribute sizes, so an UpdateItem's cost is known without reading the table.
import { Agent, createServer, request, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

type AttrValue = Record<string, unknown>;
type Item = Record<string, AttrValue>;

export interface OpTally {
  requests: number;
  /** requests as billed (SQS: per 64 KiB chunk; DynamoDB: per request) */
  billable: number;
  /** batch entries (sent/deleted messages, written items, keys read); received messages for ReceiveMessage */
  entries: number;
  /** DynamoDB table write request units */
  wru: number;
  /** DynamoDB write request units of the status index */
  gsiWru: number;
  /** DynamoDB read request units */
  rru: number;
  /** answers other than 200 (ConditionalCheckFailed and the like) */
  errors: number;
  /** ReceiveMessage only: calls that returned no message */
  empty: number;
  /** time spent waiting for the endpoint (ms, summed over calls; long polls included) */
  ms: number;
}

export type Tally = Map<string, OpTally>;

const SQS_CHUNK = 64 * 1024;
/** Attributes projected into the status index (resources.ts JOB_STATE_TABLE.statusIndex), besides its keys. */
const INDEX_KEY = "gsi_status";
const INDEX_PROJECTED = ["gsi_time", "worker_id", "channel", "start_time"];

const blank = (): OpTally => ({ requests: 0, billable: 0, entries: 0, wru: 0, gsiWru: 0, rru: 0, errors: 0, empty: 0, ms: 0 });

/** DynamoDB's size of one attribute value (approximation of its documented rules). */
function valueSize(v: AttrValue): number {
  const [type, x] = Object.entries(v)[0] ?? ["NULL", true];
  switch (type) {
    case "S":
      return Buffer.byteLength(x as string);
    case "N":
      // significant digits: sign, exponent, point, leading and trailing zeroes do not count
      return Math.ceil(String(x).replace(/^[-+]/, "").replace(/e.*$/i, "").replace(".", "").replace(/^0+/, "").replace(/0+$/, "").length / 2) + 1;
    case "B":
      return Buffer.from(x as string, "base64").length;
    case "BOOL":
    case "NULL":
      return 1;
    case "SS":
      return (x as string[]).reduce((a, s) => a + Buffer.byteLength(s), 0);
    case "NS":
      return (x as string[]).reduce((a, s) => a + valueSize({ N: s }), 0);
    case "BS":
      return (x as string[]).reduce((a, s) => a + Buffer.from(s, "base64").length, 0);
    case "L":
      return 3 + (x as AttrValue[]).reduce((a, e) => a + 1 + valueSize(e), 0);
    case "M":
      return 3 + Object.entries(x as Item).reduce((a, [k, e]) => a + 1 + Buffer.byteLength(k) + valueSize(e), 0);
    default:
      return 1;
  }
}

/** Shadow of an item: attribute name → its size and its value (JSON), enough to price the next write. */
interface Shadow {
  sizes: Map<string, number>;
  raw: Map<string, string>;
}

const itemSize = (s: Shadow | undefined) => (s ? [...s.sizes].reduce((a, [k, v]) => a + Buffer.byteLength(k) + v, 0) : 0);
const kb = (bytes: number, unit: number) => Math.max(1, Math.ceil(bytes / unit));
const indexKey = (s: Shadow | undefined) => (s?.raw.has(INDEX_KEY) ? (JSON.parse(s.raw.get(INDEX_KEY)!) as { S?: string }).S : undefined);
const projected = (s: Shadow) => INDEX_PROJECTED.map((a) => s.raw.get(a) ?? "null").join("|");

function shadowOf(item: Item): Shadow {
  const entries = Object.entries(item);
  return { sizes: new Map(entries.map(([k, v]) => [k, valueSize(v)])), raw: new Map(entries.map(([k, v]) => [k, JSON.stringify(v)])) };
}

/** Index write units of one table write: none, a put or delete (1), or a key change (delete + put: 2). */
function indexWrites(before: Shadow | undefined, after: Shadow | undefined): number {
  const b = indexKey(before);
  const a = indexKey(after);
  if (!b && !a) return 0;
  if (!b || !a) return 1;
  if (a !== b) return 2;
  return projected(before!) !== projected(after!) ? 1 : 0;
}

export class AwsMeter {
  private server?: Server;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly lanes = new Map<string, Promise<void>>();
  private tally: Tally = new Map();
  /** Shadows of DynamoDB items by table and key (kept across resets: a job's item outlives a pass boundary). */
  private readonly items = new Map<string, Shadow>();
  /** Job ids whose job-state entry was deleted (finished), and messages deleted from SQS, since the last reset. */
  readonly finished = new Set<string>();
  deletedMessages = 0;
  /** Finishes of a job already finished since the last reset (a message delivered again). */
  repeatedFinishes = 0;
  /** The largest item written so far (bytes, DynamoDB's sizing): all writes cost 1 unit while it stays <= 1 KB. */
  largestItem = 0;
  endpoint = "";

  constructor(private readonly target: string) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const lane = this.laneOf(req, body);
        // never rejects: a lane goes on after a failed call
        const go = () =>
          this.forward(req, body)
            .then(({ status, headers, answer, ms }) => {
              try {
                this.record(req, body, status, answer).ms += ms;
              } catch (e) {
                console.error("aws meter: could not tally a request:", e);
              }
              res.writeHead(status, headers);
              res.end(answer);
            })
            .catch((e: unknown) => void res.destroy(e instanceof Error ? e : new Error(String(e))));
        if (lane === undefined) return void go();
        const next = (this.lanes.get(lane) ?? Promise.resolve()).then(go);
        this.lanes.set(lane, next);
        void next.finally(() => this.lanes.get(lane) === next && this.lanes.delete(lane));
      });
    });
    this.server.keepAliveTimeout = 120_000;
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.endpoint;
  }

  /**
   * moto's SQS queue is not thread-safe: a delete rebuilds the queue's message list without its lock, so a message
   * sent meanwhile is lost and a message deleted by a concurrent delete comes back. The calls that change a queue's
   * list (sends and deletes) therefore go to moto one at a time per queue, as a real queue would apply them.
   */
  private laneOf(req: IncomingMessage, body: Buffer): string | undefined {
    const target = String(req.headers["x-amz-target"] ?? "");
    if (!/^AmazonSQS\.(SendMessage|DeleteMessage)/.test(target)) return undefined;
    try {
      return (JSON.parse(body.toString() || "{}") as { QueueUrl?: string }).QueueUrl ?? "";
    } catch {
      return ""; // moto will answer the malformed call; it still waits its turn
    }
  }

  private forward(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: IncomingMessage["headers"]; answer: Buffer; ms: number }> {
    const started = performance.now();
    return new Promise((resolve) => {
      const out = request(new URL(req.url ?? "/", this.target), { method: req.method, headers: req.headers, agent: this.agent }, (r) => {
        const parts: Buffer[] = [];
        r.on("data", (c: Buffer) => parts.push(c));
        r.on("end", () => resolve({ status: r.statusCode ?? 502, headers: r.headers, answer: Buffer.concat(parts), ms: performance.now() - started }));
        r.on("error", (e) => resolve({ status: 502, headers: {}, answer: Buffer.from(String(e)), ms: performance.now() - started }));
      });
      out.on("error", (e) => resolve({ status: 502, headers: {}, answer: Buffer.from(String(e)), ms: performance.now() - started }));
      out.end(body);
    });
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r) ?? r(undefined));
    this.agent.destroy();
  }

  /** The tally since the last reset (and starts a new one). */
  reset(): Tally {
    const t = this.tally;
    this.tally = new Map();
    this.finished.clear();
    this.deletedMessages = 0;
    this.repeatedFinishes = 0;
    return t;
  }

  snapshot(): Tally {
    return new Map([...this.tally].map(([k, v]) => [k, { ...v }]));
  }

  private op(service: string, action: string): OpTally {
    const key = `${service} ${action}`;
    let t = this.tally.get(key);
    if (!t) this.tally.set(key, (t = blank()));
    return t;
  }

  private record(req: IncomingMessage, body: Buffer, status: number, answer: Buffer): OpTally {
    const target = String(req.headers["x-amz-target"] ?? "");
    if (target.startsWith("AmazonSQS.")) return this.sqs(target.slice(10), body, status, answer);
    if (target.startsWith("DynamoDB_")) return this.dynamo(target.slice(target.indexOf(".") + 1), body, status, answer);
    // another service: name it from the credential scope, the operation from the target, the body or the path
    const scope = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\//.exec(String(req.headers.authorization ?? ""))?.[1] ?? "unsigned";
    const action = target.split(".").pop() || /(?:^|&)Action=([^&]+)/.exec(body.toString())?.[1] || (req.url ?? "/").split("?")[0].split("/").pop() || "?";
    const t = this.op(scope, action);
    t.requests++;
    t.billable++;
    if (status !== 200) t.errors++;
    return t;
  }

  private sqs(action: string, body: Buffer, status: number, answer: Buffer): OpTally {
    const t = this.op("SQS", action);
    const input = JSON.parse(body.toString() || "{}");
    const output = status === 200 ? JSON.parse(answer.toString() || "{}") : {};
    t.requests++;
    if (status !== 200) t.errors++;
    let payload = 0;
    if (action === "SendMessageBatch") {
      t.entries += input.Entries?.length ?? 0;
      payload = (input.Entries ?? []).reduce((a: number, e: { MessageBody?: string }) => a + Buffer.byteLength(e.MessageBody ?? ""), 0);
    } else if (action === "SendMessage") {
      t.entries++;
      payload = Buffer.byteLength(input.MessageBody ?? "");
    } else if (action === "ReceiveMessage") {
      const got: { Body?: string }[] = output.Messages ?? [];
      t.entries += got.length;
      if (got.length === 0) t.empty++;
      payload = got.reduce((a, m) => a + Buffer.byteLength(m.Body ?? ""), 0);
    } else if (action === "DeleteMessageBatch" || action === "ChangeMessageVisibilityBatch") {
      t.entries += input.Entries?.length ?? 0;
      if (action === "DeleteMessageBatch") this.deletedMessages += output.Successful?.length ?? 0;
    } else if (action === "DeleteMessage") {
      t.entries++;
      if (status === 200) this.deletedMessages++;
    }
    t.billable += kb(payload, SQS_CHUNK);
    return t;
  }

  private dynamo(action: string, body: Buffer, status: number, answer: Buffer): OpTally {
    const t = this.op("DynamoDB", action);
    const input = JSON.parse(body.toString() || "{}");
    const ok = status === 200;
    const output = ok ? JSON.parse(answer.toString() || "{}") : {};
    t.requests++;
    t.billable++;
    if (!ok) t.errors++;
    const conditionFailed = !ok && answer.toString().includes("ConditionalCheckFailed");
    switch (action) {
      case "PutItem":
        t.entries++;
        this.write(t, input.TableName, input.Item, ok, conditionFailed);
        break;
      case "DeleteItem":
        t.entries++;
        this.delete(t, input.TableName, input.Key, ok, conditionFailed);
        break;
      case "UpdateItem":
        t.entries++;
        this.update(t, input, ok, conditionFailed);
        break;
      case "BatchWriteItem":
        for (const [table, reqs] of Object.entries(input.RequestItems ?? {}) as [string, { PutRequest?: { Item: Item }; DeleteRequest?: { Key: Item } }[]][]) {
          const unprocessed = new Set(((output.UnprocessedItems?.[table] ?? []) as unknown[]).map((u) => JSON.stringify(u)));
          for (const r of reqs) {
            if (unprocessed.has(JSON.stringify(r))) continue;
            t.entries++;
            if (r.PutRequest) this.write(t, table, r.PutRequest.Item, ok, false);
            else if (r.DeleteRequest) this.delete(t, table, r.DeleteRequest.Key, ok, false);
          }
        }
        break;
      case "GetItem":
        t.entries++;
        t.rru += this.readUnits(input.TableName, input.Key, !!input.ConsistentRead);
        break;
      case "BatchGetItem":
        for (const [table, spec] of Object.entries(input.RequestItems ?? {}) as [string, { Keys: Item[]; ConsistentRead?: boolean }][]) {
          for (const key of spec.Keys) {
            t.entries++;
            t.rru += this.readUnits(table, key, !!spec.ConsistentRead);
          }
        }
        break;
      case "Query":
      case "Scan": {
        // billed on the total size of the items read, rounded up once per request
        const bytes = ((output.Items ?? []) as Item[]).reduce((a, it) => a + itemSize(shadowOf(it)), 0);
        t.entries += output.Items?.length ?? 0;
        t.rru += kb(bytes, 4096) / (input.ConsistentRead ? 1 : 2);
        break;
      }
    }
    return t;
  }

  private keyOf(table: string, key: Item): string {
    return `${table}|${JSON.stringify(Object.entries(key).sort(([a], [b]) => a.localeCompare(b)))}`;
  }

  private keyFromItem(table: string, item: Item): string {
    // every table of ours has a single partition key `pk`
    return this.keyOf(table, { pk: item.pk });
  }

  private write(t: OpTally, table: string, item: Item, ok: boolean, conditionFailed: boolean): void {
    const key = this.keyFromItem(table, item);
    const before = this.items.get(key);
    const after = shadowOf(item);
    if (!ok && !conditionFailed) return;
    t.wru += kb(Math.max(itemSize(before), itemSize(after)), 1024);
    if (!ok) return;
    t.gsiWru += indexWrites(before, after);
    this.items.set(key, after);
    this.largestItem = Math.max(this.largestItem, itemSize(after));
  }

  private delete(t: OpTally, table: string, keyAttrs: Item, ok: boolean, conditionFailed: boolean): void {
    const key = this.keyOf(table, keyAttrs);
    const before = this.items.get(key);
    if (!ok && !conditionFailed) return;
    t.wru += kb(itemSize(before), 1024);
    if (!ok) return;
    t.gsiWru += indexWrites(before, undefined);
    this.items.delete(key);
    const pk = keyAttrs.pk?.S as string | undefined;
    if (!pk?.startsWith("job#")) return;
    if (this.finished.has(pk.slice(4))) this.repeatedFinishes++;
    this.finished.add(pk.slice(4));
  }

  /**
   * UpdateItem: the item after the update from its SET and REMOVE clauses (`#a = :v`, `#a = if_not_exists(#a, :v)`,
   * `#a = if_not_exists(#a, :v) + :w`; the forms the job-state adapter writes), applied to the shadow.
   */
  private update(t: OpTally, input: { TableName: string; Key: Item; UpdateExpression?: string; ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Item }, ok: boolean, conditionFailed: boolean): void {
    const key = this.keyOf(input.TableName, input.Key);
    const before = this.items.get(key);
    if (!ok && !conditionFailed) return;
    if (!ok) {
      t.wru += kb(itemSize(before), 1024);
      return;
    }
    const names = input.ExpressionAttributeNames ?? {};
    const values = input.ExpressionAttributeValues ?? {};
    const nameOf = (token: string) => names[token] ?? token;
    const after = before ? { sizes: new Map(before.sizes), raw: new Map(before.raw) } : shadowOf(input.Key);
    const { sizes, raw } = after;
    const expr = input.UpdateExpression ?? "";
    const set = /\bSET\b([\s\S]*?)(?=\bREMOVE\b|\bADD\b|\bDELETE\b|$)/i.exec(expr)?.[1] ?? "";
    for (const clause of splitTopLevel(set)) {
      const m = /^\s*([#\w.]+)\s*=\s*([\s\S]+)$/.exec(clause);
      if (!m) continue;
      const attr = nameOf(m[1]);
      const keepExisting = /^if_not_exists\(/i.test(m[2].trim()) && sizes.has(attr);
      if (keepExisting) continue;
      const valueToken = /:\w+/.exec(m[2])?.[0];
      const v = valueToken ? values[valueToken] : undefined;
      if (!v) continue;
      sizes.set(attr, valueSize(v));
      raw.set(attr, JSON.stringify(v));
    }
    const remove = /\bREMOVE\b([\s\S]*?)(?=\bSET\b|\bADD\b|\bDELETE\b|$)/i.exec(expr)?.[1] ?? "";
    for (const token of splitTopLevel(remove)) {
      const attr = nameOf(token.trim());
      sizes.delete(attr);
      raw.delete(attr);
    }
    t.wru += kb(Math.max(itemSize(before), itemSize(after)), 1024);
    t.gsiWru += indexWrites(before, after);
    this.items.set(key, after);
    this.largestItem = Math.max(this.largestItem, itemSize(after));
  }

  private readUnits(table: string, key: Item, consistent: boolean): number {
    const size = itemSize(this.items.get(this.keyOf(table, key)));
    return kb(size, 4096) / (consistent ? 1 : 2);
  }
}

/** Splits `a = x, b = f(c, d)` at the commas outside parentheses. */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out;
}
