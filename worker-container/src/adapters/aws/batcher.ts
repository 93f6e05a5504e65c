// Per-turn batching for the AWS APIs that take batches (SendMessageBatch, DeleteMessageBatch,
// ChangeMessageVisibilityBatch: 10 entries; BatchGetItem: 100 keys). The calls made in one event-loop turn for
// the same target (a queue URL) become as few requests as the API's limits allow: 32 dispatcher loops acking
// together cost 4 DeleteMessageBatch calls instead of 32. An idle system pays one setImmediate per call.

interface Call<In, Out> {
  input: In;
  resolve: (out: Out) => void;
  reject: (e: unknown) => void;
}

export interface BatchLimits<In> {
  /** Entries per request. */
  maxEntries: number;
  /** Payload bytes per request (SQS: the batch's bodies together), with the size of one input. */
  maxBytes?: number;
  sizeOf?: (input: In) => number;
  /** Wait this long for more calls before sending (default: to the end of the turn). Full batches go at once. */
  lingerMs?: number;
}

export class KeyedBatcher<In, Out> {
  private pending = new Map<string, Call<In, Out>[]>();
  private scheduled = false;

  /** `run` answers one output per input, in order; if it throws, every call of that request fails with it. */
  constructor(
    private readonly run: (key: string, inputs: In[]) => Promise<Out[]>,
    private readonly limits: BatchLimits<In>,
  ) {}

  call(key: string, input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      let list = this.pending.get(key);
      if (!list) this.pending.set(key, (list = []));
      list.push({ input, resolve, reject });
      if (this.limits.lingerMs && list.length >= this.limits.maxEntries) {
        this.pending.delete(key);
        for (const chunk of this.chunks(list)) this.send(key, chunk);
        return;
      }
      if (!this.scheduled) {
        this.scheduled = true;
        const go = () => {
          this.scheduled = false;
          this.flush();
        };
        if (this.limits.lingerMs) setTimeout(go, this.limits.lingerMs);
        else setImmediate(go);
      }
    });
  }

  private flush(): void {
    const all = this.pending;
    this.pending = new Map();
    for (const [key, calls] of all) for (const chunk of this.chunks(calls)) this.send(key, chunk);
  }

  private *chunks(calls: Call<In, Out>[]): Generator<Call<In, Out>[]> {
    const { maxEntries, maxBytes, sizeOf } = this.limits;
    let chunk: Call<In, Out>[] = [];
    let bytes = 0;
    for (const c of calls) {
      const size = maxBytes && sizeOf ? sizeOf(c.input) : 0;
      if (chunk.length > 0 && (chunk.length >= maxEntries || (maxBytes !== undefined && bytes + size > maxBytes))) {
        yield chunk;
        chunk = [];
        bytes = 0;
      }
      chunk.push(c);
      bytes += size;
    }
    if (chunk.length) yield chunk;
  }

  private send(key: string, batch: Call<In, Out>[]): void {
    this.run(
      key,
      batch.map((c) => c.input),
    ).then(
      (outs) => batch.forEach((c, i) => c.resolve(outs[i])),
      (e) => batch.forEach((c) => c.reject(e)),
    );
  }
}
