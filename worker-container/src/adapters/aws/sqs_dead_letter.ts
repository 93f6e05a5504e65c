// Reading a message of a dead-letter queue back into the job it carried (the DLQ recorder Lambda). The body is the
// job queue's own format (sqs_message.ts); a spilled job's bytes come from the spill store.
import { findChannel, type ChannelSpec } from "../../core/channel_config.js";
import type { DeadLetter } from "../../core/dead_letters.js";
import type { SpillStore } from "./sqs_job_queue.js";
import { decodeBody, toQueuedJob } from "./sqs_message.js";

/** The attribute the job queue puts on a message it moved to the DLQ itself because it could not read it. */
export const ERROR_ATTRIBUTE = "jobworkerp_error";

export type ReadDeadLetter =
  | { kind: "job"; letter: DeadLetter; spillKey?: string }
  /** Not a job we can name: nothing to record but a log line. */
  | { kind: "unreadable"; reason: string };

/**
 * Decode a DLQ message. Throws only when the spill store fails (worth another delivery); a body that is not a job
 * of ours is "unreadable".
 */
export async function readDeadLetter(
  body: string,
  errorAttribute: string | undefined,
  opts: { spill?: Pick<SpillStore, "get">; channels: readonly ChannelSpec[] },
): Promise<ReadDeadLetter> {
  const moved = errorAttribute ? ` (moved there by a worker: ${errorAttribute})` : "";
  const d = decodeBody(body);
  if (!d.ok) return { kind: "unreadable", reason: d.reason + moved };
  let bytes = d.jobBytes;
  if (!bytes) {
    if (!opts.spill) return { kind: "unreadable", reason: `job ${d.jobId} was spilled ('${d.ref}') and no spill store is configured` };
    bytes = await opts.spill.get(d.ref!);
    if (!bytes) return { kind: "unreadable", reason: `the spilled bytes '${d.ref}' of job ${d.jobId} are gone${moved}` };
  }
  try {
    const item = toQueuedJob(d, bytes);
    return { kind: "job", letter: { item, deliveries: findChannel(opts.channels, d.channel)?.maxReceiveCount }, spillKey: d.ref };
  } catch (e) {
    return { kind: "unreadable", reason: `job ${d.jobId}: ${(e as Error).message}${moved}` };
  }
}
