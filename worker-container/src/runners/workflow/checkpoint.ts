// Checkpoints (jobworkerp extension): with `checkpointing.enabled` and an execution id, a task marked
// `checkpoint: true` saves the workflow's state after it completes; a later run with the same execution id and
// `from_checkpoint.position` continues after that task with its saved output. The saved value is jobworkerp's
// CheckPointContext (inner values as JSON text, as in WorkflowRunArgs.CheckPointContext).
import type { Store } from "../../core/ports.js";

export interface CheckpointData {
  workflow: { name: string; input: string; context_variables: string };
  /** context_variables of the task holds the spec's `$context` (export.as) as {"context": …}. */
  task: { input: string; output: string; context_variables: string; flow_directive: string };
}

export interface CheckpointStore {
  save(executionKey: string, position: string, data: CheckpointData): Promise<void>;
  load(executionKey: string, position: string): Promise<CheckpointData | undefined>;
}

/** The key of one execution: checkpoints of different workflows never mix. */
export const executionKey = (workflowName: string, executionId: string) => `${workflowName}:${executionId}`;

/** Checkpoints in the running shape's Store (SQLite embedded, MySQL scalable): they survive restarts. */
export class StoreCheckpoints implements CheckpointStore {
  constructor(private readonly store: Pick<Store, "saveWorkflowCheckpoint" | "loadWorkflowCheckpoint">) {}

  save(key: string, position: string, data: CheckpointData): Promise<void> {
    return this.store.saveWorkflowCheckpoint(key, position, JSON.stringify(data), Date.now());
  }

  async load(key: string, position: string): Promise<CheckpointData | undefined> {
    const text = await this.store.loadWorkflowCheckpoint(key, position);
    return text === undefined ? undefined : (JSON.parse(text) as CheckpointData);
  }
}

/** Process-local checkpoints (runs without a job system: tests, library use). */
export class MemoryCheckpoints implements CheckpointStore {
  private readonly saved = new Map<string, CheckpointData>();

  async save(key: string, position: string, data: CheckpointData): Promise<void> {
    this.saved.set(`${key}\n${position}`, structuredClone(data));
  }

  async load(key: string, position: string): Promise<CheckpointData | undefined> {
    const d = this.saved.get(`${key}\n${position}`);
    return d && structuredClone(d);
  }
}
