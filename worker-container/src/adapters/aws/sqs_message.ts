// The body of a job's SQS message: JSON with the protobuf Job (base64), its channel and flags, and the exact
// time it may run (SQS delays have 1 s granularity and stop at 15 min). A job too big for one message keeps its
// bytes in a spill store and travels by reference (`ref`). The job id is readable without decoding the job,
// so removal markers can be checked first.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { JobSchema } from "../../gen/jobworkerp/data/job_pb.js";
import type { QueuedJob } from "../../core/ports.js";

export const MESSAGE_VERSION = 1;

interface Body {
  v: number;
  /** Job id (decimal string: snowflakes exceed 2^53). */
  id: string;
  c: string;
  /** base64 protobuf Job, absent when spilled. */
  j?: string;
  /** Spill key of the job's bytes. */
  ref?: string;
  d?: 1;
  l?: 1;
  /** Not before (epoch ms). */
  nb?: number;
}

export type DecodedBody =
  | { ok: true; jobId: bigint; channel: string; notBefore: number; ref?: string; jobBytes?: Uint8Array; durable: boolean; loadOnly: boolean }
  | { ok: false; reason: string };

export function jobBytes(item: QueuedJob): Uint8Array {
  return toBinary(JobSchema, item.job);
}

export function encodeBody(item: QueuedJob, notBefore: number, bytes: Uint8Array | { ref: string }): string {
  const body: Body = { v: MESSAGE_VERSION, id: item.job.id!.value.toString(), c: item.channel };
  if (bytes instanceof Uint8Array) body.j = Buffer.from(bytes).toString("base64");
  else body.ref = bytes.ref;
  if (item.durable) body.d = 1;
  if (item.loadOnly) body.l = 1;
  if (notBefore > 0) body.nb = notBefore;
  return JSON.stringify(body);
}

export function decodeBody(text: string | undefined): DecodedBody {
  if (!text) return { ok: false, reason: "empty message body" };
  let b: Partial<Body>;
  try {
    b = JSON.parse(text) as Partial<Body>;
  } catch {
    return { ok: false, reason: "message body is not JSON" };
  }
  if (typeof b !== "object" || b === null) return { ok: false, reason: "message body is not a JSON object" };
  if (b.v !== MESSAGE_VERSION) return { ok: false, reason: `unknown message version ${JSON.stringify(b.v)}` };
  if (typeof b.id !== "string" || !/^\d{1,20}$/.test(b.id)) return { ok: false, reason: "message has no valid job id" };
  if (typeof b.c !== "string" || !b.c) return { ok: false, reason: "message has no channel" };
  if ((typeof b.j === "string") === (typeof b.ref === "string")) return { ok: false, reason: "message must carry either the job (j) or a reference (ref)" };
  if (b.nb !== undefined && (typeof b.nb !== "number" || !Number.isFinite(b.nb))) return { ok: false, reason: "message has an invalid not-before time" };
  return {
    ok: true,
    jobId: BigInt(b.id),
    channel: b.c,
    notBefore: b.nb ?? 0,
    ref: b.ref,
    jobBytes: typeof b.j === "string" ? new Uint8Array(Buffer.from(b.j, "base64")) : undefined,
    durable: b.d === 1,
    loadOnly: b.l === 1,
  };
}

/** The queued job from a decoded body and its job bytes; throws with a reason when the bytes are not that job. */
export function toQueuedJob(d: Extract<DecodedBody, { ok: true }>, bytes: Uint8Array): QueuedJob {
  const job = fromBinary(JobSchema, bytes);
  if (job.id?.value !== d.jobId) throw new Error(`job bytes hold job ${job.id?.value ?? "(none)"}, the message says ${d.jobId}`);
  const item: QueuedJob = { job, channel: d.channel };
  if (d.durable) item.durable = true;
  if (d.loadOnly) item.loadOnly = true;
  return item;
}
