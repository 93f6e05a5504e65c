// What the dlq-recorder Lambda does in a deployment, done in-process for local endpoints (AWS_LOCAL_FUNCTIONS):
// every few seconds, read the deployment's dead-letter queues and record each job that reached one as failed.
// The same reading (sqs_dead_letter.ts) and recording (core/dead_letters.ts) as the Lambda; a message is deleted
// only after it was recorded, so a failure leaves it for the next pass.
import { DeleteMessageCommand, ListQueuesCommand, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { ChannelSpec } from "../../core/channel_config.js";
import type { DeadLetterRecorder } from "../../core/dead_letters.js";
import { ERROR_ATTRIBUTE, readDeadLetter } from "./sqs_dead_letter.js";
import type { SpillStore } from "./sqs_job_queue.js";

export interface LocalDeadLetterOptions {
  sqs: SQSClient;
  resourcePrefix: string;
  channels: readonly ChannelSpec[];
  recorder: Pick<DeadLetterRecorder, "record">;
  spill?: SpillStore;
  intervalMs?: number;
  onError: (e: unknown, context: string) => void;
  onRecorded?: (jobId: bigint) => void;
}

export class LocalDeadLetterPoller {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly o: LocalDeadLetterOptions) {}

  start(): void {
    this.timer ??= setInterval(() => {
      this.running ??= this.pass()
        .then(() => undefined, (e: unknown) => this.o.onError(e, "reading the dead-letter queues"))
        .finally(() => (this.running = undefined));
    }, this.o.intervalMs ?? 2000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass over every dead-letter queue of the deployment; returns how many messages were recorded. */
  async pass(): Promise<number> {
    const { sqs, resourcePrefix } = this.o;
    const listed = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: `${resourcePrefix}-`, MaxResults: 1000 }));
    let recorded = 0;
    for (const url of listed.QueueUrls ?? []) {
      if (!url.endsWith("-dlq")) continue;
      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: [ERROR_ATTRIBUTE] }));
      for (const m of got.Messages ?? []) {
        try {
          const read = await readDeadLetter(m.Body ?? "", m.MessageAttributes?.[ERROR_ATTRIBUTE]?.StringValue, this.o);
          if (read.kind === "job") {
            await this.o.recorder.record(read.letter);
            if (read.spillKey) await this.o.spill?.delete(read.spillKey);
            this.o.onRecorded?.(read.letter.item.job.id!.value);
          } else {
            this.o.onError(new Error(read.reason), `dead letter ${m.MessageId} is not a job: dropped`);
          }
          await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
          recorded++;
        } catch (e) {
          this.o.onError(e, `dead letter ${m.MessageId} not recorded; retried on a later pass`);
        }
      }
    }
    return recorded;
  }
}
