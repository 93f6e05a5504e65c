// Unary and server-streaming calls with raw protobuf bytes in and out (identity (de)serializers), collecting
// the response headers, trailers and final status; the job's signal cancels the call.
import * as grpc from "@grpc/grpc-js";

export interface CallSpec {
  /** "/package.Service/Method" */
  path: string;
  request: Uint8Array;
  metadata: grpc.Metadata;
  /** Absolute deadline (ms since epoch), if any. */
  deadline?: number;
  signal: AbortSignal;
}

export interface CallEnd {
  code: grpc.status;
  details: string;
  /** Response headers then trailers (trailers win on a clash); "-bin" values base64-encoded, repeats joined with ", ". */
  metadata: Record<string, string>;
}

const identity = (b: Buffer) => b;
const toBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function metadataRecord(into: Record<string, string>, md: grpc.Metadata | undefined) {
  for (const [key, values] of Object.entries(md?.toJSON() ?? {})) {
    into[key] = values.map((v) => (typeof v === "string" ? v : Buffer.from(v).toString("base64"))).join(", ");
  }
}

function callOptions(spec: CallSpec): grpc.CallOptions {
  return spec.deadline !== undefined ? { deadline: spec.deadline } : {};
}

export async function unaryCall(client: grpc.Client, spec: CallSpec): Promise<CallEnd & { body?: Buffer }> {
  return new Promise((resolve) => {
    const metadata: Record<string, string> = {};
    let body: Buffer | undefined;
    const call = client.makeUnaryRequest<Buffer, Buffer>(spec.path, identity, identity, toBuffer(spec.request), spec.metadata, callOptions(spec), (_err, value) => {
      body = value;
    });
    const onAbort = () => call.cancel();
    spec.signal.addEventListener("abort", onAbort, { once: true });
    call.on("metadata", (md) => metadataRecord(metadata, md));
    // "status" comes after the callback, with the trailers, for successes and failures alike.
    call.on("status", (st: grpc.StatusObject) => {
      spec.signal.removeEventListener("abort", onAbort);
      metadataRecord(metadata, st.metadata);
      resolve({ code: st.code, details: st.details, metadata, body });
    });
  });
}

export type StreamEvent = { message: Buffer } | { end: CallEnd };

/** Yields each response message, then the final status. Breaking out of the loop cancels the call. */
export async function* serverStreamCall(client: grpc.Client, spec: CallSpec): AsyncGenerator<StreamEvent> {
  const call = client.makeServerStreamRequest<Buffer, Buffer>(spec.path, identity, identity, toBuffer(spec.request), spec.metadata, callOptions(spec));
  const metadata: Record<string, string> = {};
  const queue: StreamEvent[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  const push = (e: StreamEvent) => {
    queue.push(e);
    wake?.();
  };
  const onAbort = () => call.cancel();
  spec.signal.addEventListener("abort", onAbort, { once: true });
  call.on("metadata", (md) => metadataRecord(metadata, md));
  call.on("data", (message: Buffer) => push({ message }));
  call.on("error", () => {}); // the status carries the same information
  // The status can be emitted while messages still sit in the stream's buffer: report it after the stream ended.
  let status: grpc.StatusObject | undefined;
  let drained = false;
  const finish = () => {
    if (!status || !drained) return;
    metadataRecord(metadata, status.metadata);
    push({ end: { code: status.code, details: status.details, metadata } });
  };
  call.on("status", (st: grpc.StatusObject) => {
    status = st;
    finish();
  });
  const onDrained = () => {
    if (drained) return;
    drained = true;
    finish();
  };
  call.on("end", onDrained);
  call.on("close", onDrained);
  try {
    for (;;) {
      const e = queue.shift();
      if (!e) {
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      yield e;
      if ("end" in e) {
        ended = true;
        return;
      }
    }
  } finally {
    spec.signal.removeEventListener("abort", onAbort);
    if (!ended) call.cancel();
  }
}
