// Checkpoints in the engine (process-local store): a resumed run continues after the checkpointed task with
// its saved output, variables and $context, and ends with the same output as an uninterrupted run. The
// kill-and-restart case through the real server is in test/e2e/workflow_checkpoint.test.ts.
import { describe, expect, it } from "vitest";
import { MemoryCheckpoints } from "../../worker-container/src/runners/workflow/checkpoint.js";
import { DefinitionError } from "../../worker-container/src/runners/workflow/errors.js";
import { prepareWorkflow, runWorkflow } from "../../worker-container/src/runners/workflow/workflow.js";

const WF = `document: {dsl: 1.0.0, namespace: test, name: cp, version: 1.0.0}
checkpointing: {enabled: true, storage: memory}
do:
  - a:
      set: {n: '\${ .n + 1 }'}
      export: {as: '{seenA: .n}'}
      checkpoint: true
  - b:
      set: {n: '\${ .n * 10 }', k: '\${ $n }'}
      checkpoint: true
  - c:
      set: {n: '\${ .n + 1 }', ctx: '\${ $context }', k: '\${ $k }', input: '\${ $workflow.input }'}
`;

describe("workflow checkpoints", () => {
  it("resuming from each checkpoint gives the uninterrupted output and skips the earlier tasks", async () => {
    const def = await prepareWorkflow({ data: WF });
    const checkpoints = new MemoryCheckpoints();
    const full = await runWorkflow(def, { input: { n: 1 }, executionId: "e1", checkpoints });
    expect(full.status).toBe("Completed");
    expect(full.output).toEqual({ n: 21, ctx: { seenA: 2 }, k: 2, input: { n: 1 } });
    for (const position of ["/do/0/a", "/do/1/b"]) {
      const events: any[] = [];
      const again = await runWorkflow(def, { executionId: "e1", checkpoints, resume: { position }, onEvent: (e) => events.push(e) });
      expect(again.status, JSON.stringify(again.error)).toBe("Completed");
      expect(again.output).toEqual(full.output);
      const started = events.filter((e) => "task_started" in e).map((e) => e.task_started.task_name);
      expect(started).toEqual(position === "/do/0/a" ? ["b", "c"] : ["c"]);
    }
  });

  it("nothing is saved without checkpointing.enabled or an execution id; resuming then says why", async () => {
    const checkpoints = new MemoryCheckpoints();
    const off = await prepareWorkflow({ data: WF.replace("enabled: true", "enabled: false") });
    await runWorkflow(off, { input: { n: 1 }, executionId: "e2", checkpoints });
    const r = await runWorkflow(off, { executionId: "e2", checkpoints, resume: { position: "/do/0/a" } });
    expect(r.status).toBe("Faulted");
    expect(r.error).toMatchObject({ status: 400, title: "cannot resume", detail: "no checkpoint at '/do/0/a' for execution 'e2'" });
    const def = await prepareWorkflow({ data: WF });
    const noId = await runWorkflow(def, { checkpoints, resume: { position: "/do/0/a" } });
    expect(noId.error?.detail).toMatch(/needs an execution_id/);
    const bad = await runWorkflow(def, { executionId: "e2", checkpoints, resume: { position: "/do/7/zz", data: { workflow: { name: "cp", input: "{}", context_variables: "{}" }, task: { input: "{}", output: "{}", context_variables: "{}", flow_directive: "" } } } });
    expect(bad.error?.detail).toMatch(/not the position of a top-level task/);
  });

  it("checkpoint data given by the caller overrides the saved one", async () => {
    const def = await prepareWorkflow({ data: WF });
    const checkpoints = new MemoryCheckpoints();
    const data = { workflow: { name: "cp", input: '{"n":0}', context_variables: '{"n":5}' }, task: { input: "{}", output: '{"n":5}', context_variables: '{"context":{"seenA":5}}', flow_directive: "continue" } };
    const r = await runWorkflow(def, { executionId: "e3", checkpoints, resume: { position: "/do/0/a", data } });
    expect(r.output).toEqual({ n: 51, ctx: { seenA: 5 }, k: 5, input: { n: 0 } });
    expect(await checkpoints.load("cp:e3", "/do/0/a")).toEqual(data);
  });

  it("then: wait pauses (Waiting) and saves a checkpoint; resuming continues after it", async () => {
    const def = await prepareWorkflow({ data: WF.replace("      checkpoint: true\n  - b:", "      then: wait\n  - b:") });
    const checkpoints = new MemoryCheckpoints();
    const first = await runWorkflow(def, { input: { n: 1 }, executionId: "e4", checkpoints });
    expect(first.status).toBe("Waiting");
    expect(first.position).toBe("/do/0/a");
    const resumed = await runWorkflow(def, { executionId: "e4", checkpoints, resume: { position: first.position } });
    expect(resumed.status).toBe("Completed");
    expect(resumed.output).toEqual({ n: 21, ctx: { seenA: 2 }, k: 2, input: { n: 1 } });
  });

  it("checkpoint on a nested task is rejected before running", async () => {
    const err = await prepareWorkflow({ data: WF + "  - d:\n      do:\n        - e:\n            set: {x: 1}\n            checkpoint: true\n" }).catch((e) => e);
    expect(err).toBeInstanceOf(DefinitionError);
    expect(err.problems).toContain("/do/3/d/do/0/e/checkpoint: checkpoints are supported on top-level tasks only");
  });
});
