// dlq-recorder: triggered by every channel × priority dead-letter queue. Each message becomes a stored MAX_RETRY
// result (core/dead_letters.ts) so no job vanishes silently. Partial batch failures: a record that failed for a
// transient reason (database or Redis down) is reported in batchItemFailures and delivered again; a message that is
// not a job of ours is logged with its message id and consumed.
import middy from "@middy/core";
import sqsPartialBatchFailure from "@middy/sqs-partial-batch-failure";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { pino, type Logger } from "pino";
import { ERROR_ATTRIBUTE, readDeadLetter } from "../worker-container/src/adapters/aws/sqs_dead_letter.js";
import type { SpillStore } from "../worker-container/src/adapters/aws/sqs_job_queue.js";
import type { ChannelSpec } from "../worker-container/src/core/channel_config.js";
import type { DeadLetterRecorder } from "../worker-container/src/core/dead_letters.js";
import { recorderDeps } from "./deps.js";

export interface RecorderDeps {
  recorder: Pick<DeadLetterRecorder, "record">;
  channels: readonly ChannelSpec[];
  spill?: Pick<SpillStore, "get" | "delete">;
  log: Pick<Logger, "info" | "warn" | "error">;
}

async function recordOne(d: RecorderDeps, r: SQSRecord): Promise<void> {
  const read = await readDeadLetter(r.body, r.messageAttributes?.[ERROR_ATTRIBUTE]?.stringValue, d);
  if (read.kind === "unreadable") {
    d.log.error({ messageId: r.messageId, queue: r.eventSourceARN, reason: read.reason }, "dead letter that is not a job: dropped");
    return;
  }
  const result = await d.recorder.record(read.letter);
  const job = read.letter.item.job;
  d.log.warn(
    { messageId: r.messageId, jobId: String(job.id!.value), workerId: String(job.data!.workerId!.value), resultId: result && String(result.id!.value) },
    "job reached its dead-letter queue: recorded as failed",
  );
  if (read.spillKey) await d.spill?.delete(read.spillKey).catch((e: unknown) => d.log.warn({ err: e, key: read.spillKey }, "spilled job bytes not deleted"));
}

/** The handler over given dependencies (tests build them against local services). */
export function dlqRecorderHandler(deps: () => Promise<RecorderDeps>) {
  return middy<SQSEvent, SQSBatchResponse>()
    .use(sqsPartialBatchFailure({ logger: () => undefined })) // failures are logged below, with the job's context
    .handler(async (event) => {
      const d = await deps().catch((e: unknown) => {
        pino().error({ err: e }, "dlq-recorder cannot start; the whole batch will be delivered again");
        throw e;
      });
      const settled = await Promise.allSettled(
        event.Records.map((r) =>
          recordOne(d, r).catch((e: unknown) => {
            d.log.error({ err: e, messageId: r.messageId }, "dead letter not recorded; it will be delivered again");
            throw e;
          }),
        ),
      );
      return settled as unknown as SQSBatchResponse; // the middleware turns the settled list into { batchItemFailures }
    });
}

export const handler = dlqRecorderHandler(recorderDeps);
