// `job-status list`: jobs the system is processing (pending, running…), from the job state.
import { JobProcessingStatusSchema, PrioritySchema } from "../../../gen/jobworkerp/data/common_pb.js";
import { JobProcessingStatusService } from "../../../gen/jobworkerp/service/job_pb.js";
import { enumFlag, int, parseFlags, str } from "../args.js";
import { idOrName } from "../catalog.js";
import type { Group } from "../context.js";
import { enumName, enumValues } from "../views.js";

const LIST_USAGE = "usage: jobworkerp job-status list [--status PENDING|RUNNING|WAIT_RESULT|CANCELLING] [-w WORKER] [--channel NAME] [--limit N] [--offset N] [--json]";
const time = (ms: bigint | undefined) => (ms && ms > 0n ? new Date(Number(ms)).toISOString() : undefined);

export const jobStatusCommands: Group = {
  summary: "processing status of jobs",
  commands: {
    list: {
      summary: "list jobs with their processing status",
      usage: LIST_USAGE,
      async run(argv, { conn, catalog, print }) {
        const v = parseFlags(argv, { status: { type: "string" }, worker: { type: "string", short: "w" }, channel: { type: "string", short: "c" }, limit: { type: "string", short: "l" }, offset: { type: "string", short: "o" } }, LIST_USAGE);
        const worker = str(v, "worker") === undefined ? undefined : await catalog.worker(idOrName(str(v, "worker")!));
        const rows = [];
        for await (const s of conn.stream(JobProcessingStatusService, "findByCondition", {
          status: enumFlag(v, "status", enumValues(JobProcessingStatusSchema)),
          workerId: worker?.id?.value,
          channel: str(v, "channel"),
          limit: int(v, "limit"),
          offset: int(v, "offset"),
        })) {
          rows.push({
            job_id: s.id?.value.toString(),
            status: enumName(JobProcessingStatusSchema, s.status),
            worker_id: s.workerId.toString(),
            channel: s.channel,
            priority: enumName(PrioritySchema, s.priority),
            enqueue_time: print.json ? s.enqueueTime.toString() : time(s.enqueueTime),
            start_time: print.json ? s.startTime?.toString() : time(s.startTime),
          });
        }
        print.list(rows, ["job_id", "status", "worker_id", "channel", "priority", "enqueue_time", "start_time"]);
      },
    },
  },
};
