// Engine events → jobworkerp.data.WorkflowEvent bytes (the chunks of a streamed `run`; see index.ts).
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { WorkflowEventSchema } from "../../gen/jobworkerp/data/workflow_event_pb.js";
import type { WorkflowEvent } from "./engine.js";

const jobId = (id: string) => ({ value: BigInt(id) });

function toMessage(e: WorkflowEvent): MessageInitShape<typeof WorkflowEventSchema>["event"] {
  if ("task_started" in e) {
    const t = e.task_started;
    return { case: "taskStarted", value: { taskType: t.task_type, taskName: t.task_name, position: t.position } };
  }
  if ("task_completed" in e) {
    // `skipped` (tasks before a resumed checkpoint) has no field: jobworkerp reports them as completed too
    const t = e.task_completed;
    return { case: "taskCompleted", value: { taskType: t.task_type, taskName: t.task_name, position: t.position } };
  }
  if ("job_started" in e || "streaming_job_started" in e) {
    const [c, j] = "job_started" in e ? (["jobStarted", e.job_started] as const) : (["streamingJobStarted", e.streaming_job_started] as const);
    return { case: c, value: { jobId: jobId(j.job_id), runnerName: j.runner_name, workerName: j.worker_name, position: j.position } };
  }
  if ("job_completed" in e || "streaming_job_completed" in e) {
    const [c, j] = "job_completed" in e ? (["jobCompleted", e.job_completed] as const) : (["streamingJobCompleted", e.streaming_job_completed] as const);
    return {
      case: c,
      value: { jobId: jobId(j.job_id), jobResultId: j.job_result_id === undefined ? undefined : { value: BigInt(j.job_result_id) }, position: j.position },
    };
  }
  if ("streaming_data" in e) return { case: "streamingData", value: { jobId: jobId(e.streaming_data.job_id), data: e.streaming_data.data } };
  const f = e.for_item_failed;
  return { case: "forItemFailed", value: { taskName: f.task_name, position: f.position, index: f.index, errorPayloadJson: f.error_payload_json } };
}

export function encodeEvent(e: WorkflowEvent): Uint8Array {
  return toBinary(WorkflowEventSchema, create(WorkflowEventSchema, { event: toMessage(e) }));
}

/** The empty chunk (a WorkflowEvent without an event) that separates the events from the final WorkflowResult. */
export const END_OF_EVENTS = new Uint8Array(0);
