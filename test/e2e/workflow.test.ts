// WORKFLOW runner through gRPC (embedded and scalable): COMMAND and HTTP_REQUEST jobs through the real queue,
// a `for` over their outputs, a `try` that catches a failing job and retries it, a `fork` with `compete`;
// `create` then `run` of the created worker; faults; bad definitions rejected with the place named; streaming.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, collectSettled, Status } from "../helpers/client.js";
import { createCommandWorker, expectAlive, uniqueName, useServer, waitUntil } from "../helpers/fixture.js";
import { decodeMessage } from "../helpers/protos.js";
import { servedCodec, type ServedCodec } from "../helpers/served_protos.js";

const dir = mkdtempSync(join(tmpdir(), "e2e-workflow-"));
const fx = useServer({ env: { WORKER_DEFAULT_CONCURRENCY: "8", PYTHON_VENV_DIR: join(dir, "venvs") } });
let wf: ServedCodec;
let http: Server;
let base = "";
let workerId = "";

beforeAll(async () => {
  wf = await servedCodec(fx.api, "WORKFLOW");
  http = createServer((req, res) => {
    const n = Number((req.url ?? "").split("/").pop());
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ value: n * 10 }));
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  // a WORKFLOW worker without a definition: each job brings its own (args win over settings)
  const { response } = await fx.api.worker.Create({
    name: uniqueName("wf"),
    runner_id: { value: 32769 },
    runner_settings: wf.encodeSettings({}),
    response_type: "DIRECT",
    retry_policy: { type: "NONE" },
  });
  workerId = response.id.value;
});
afterAll(async () => {
  await new Promise<void>((r) => http.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

const HEAD = "document: {dsl: 1.0.0, namespace: e2e, name: wf, version: 1.0.0}\n";

async function run(args: Record<string, unknown>, worker = workerId) {
  const { response } = await fx.api.job.Enqueue({ worker_id: { value: worker }, args: wf.encodeArgs(args, "run"), timeout: 60_000 }, { timeoutMs: 90_000 });
  return response.result!.data;
}

/** Runs a workflow; expects it Completed and returns its output. */
async function runOk(yaml: string, input: unknown = {}) {
  const r = await run({ workflow_data: yaml, input: JSON.stringify(input) });
  expect(r.status, Buffer.from(r.output?.items ?? []).toString()).toBe("SUCCESS");
  const out = wf.decodeResult(r.output!.items, "run");
  expect(out.status ?? "Completed", out.error_message).toBe("Completed");
  return JSON.parse(out.output);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("WORKFLOW", () => {
  it("runs COMMAND and HTTP_REQUEST jobs, a for over their outputs, a retried try and a competing fork", async () => {
    const counter = join(dir, "attempts");
    const yaml = `${HEAD}do:
  - list:
      run:
        runner:
          name: COMMAND
          arguments: {command: /bin/sh, args: ["-c", "printf '[1,2,3]'"]}
      output: {as: '.stdout | fromjson'}
  - fetchEach:
      for: {each: n, in: .}
      inParallel: true
      do:
        - get:
            run:
              runner:
                name: HTTP_REQUEST
                settings: {base_url: "${base}"}
                arguments: {method: GET, path: '\${ "/item/" + ($n | tostring) }'}
            output: {as: '.content | fromjson | .value'}
  - sum:
      set: {total: '\${ add }'}
  - flaky:
      try:
        - attempt:
            run:
              runner:
                name: COMMAND
                arguments:
                  command: /bin/sh
                  args: ["-c", "echo x >> ${counter}; test $(wc -l < ${counter}) -ge 3 && echo ok"]
                  treat_nonzero_as_error: true
            output: {as: '{flaky: .stdout}'}
      catch:
        errors: {with: {status: 500}}
        retry:
          delay: {milliseconds: 50}
          backoff: {constant: {}}
          limit: {attempt: {count: 4}}
  - race:
      fork:
        compete: true
        branches:
          - slow:
              run:
                runner:
                  name: COMMAND
                  arguments: {command: /bin/sh, args: ["-c", "sleep 20; echo slow"]}
          - fast:
              run:
                runner:
                  name: COMMAND
                  arguments: {command: /bin/echo, args: [fast]}
      output: {as: '{winner: .stdout, total: $total}'}
`;
    const r = await run({ workflow_data: yaml, input: "{}" });
    expect(r.status).toBe("SUCCESS");
    const out = wf.decodeResult(r.output!.items, "run");
    expect(out.status ?? "Completed", out.error_message).toBe("Completed");
    expect(JSON.parse(out.output)).toEqual({ winner: "fast\n", total: 60 });
  }, 60_000);

  it("create makes a worker that runs the definition from its settings, with input and context", async () => {
    const name = uniqueName("created-wf");
    const yaml = `${HEAD}do:\n  - greet:\n      set: {msg: '$\${{{ greeting }}, {{ who }}}', n: '\${ .n * 2 }'}\n`;
    const { response } = await fx.api.job.Enqueue({
      worker_id: { value: workerId },
      using: "create",
      args: wf.encodeArgs({ workflow_data: yaml, name, workflow_context: JSON.stringify({ greeting: "hello" }) }, "create"),
    });
    const data = response.result!.data;
    expect(data.status, Buffer.from(data.output?.items ?? []).toString()).toBe("SUCCESS");
    const created = wf.decodeResult(data.output!.items, "create");
    expect(created.worker_id.value).toBeDefined();
    const r = await run({ input: JSON.stringify({ who: "bob", n: 21 }) }, created.worker_id.value);
    expect(JSON.parse(wf.decodeResult(r.output!.items, "run").output)).toEqual({ msg: "hello, bob", n: 42 });
  });

  it("a faulted workflow returns Faulted with the error naming the task", async () => {
    const yaml = `${HEAD}do:\n  - boom:\n      run:\n        runner:\n          name: COMMAND\n          arguments: {command: /bin/false, treat_nonzero_as_error: true}\n`;
    const r = await run({ workflow_data: yaml, input: "{}" });
    const out = wf.decodeResult(r.output!.items, "run");
    expect(out.status).toBe("Faulted");
    expect(JSON.parse(out.error_message)).toMatchObject({ status: 500, instance: "/do/0/boom" });
  });

  it("bad definitions fail the job with a message naming the place; the server stays up", async () => {
    const cases: [string, RegExp][] = [
      [`${HEAD}do:\n  - a:\n      run:\n        runner: {name: NO_SUCH_RUNNER, arguments: {}}\n`, /\/do\/0\/a\/run\/runner\/name: no runner named 'NO_SUCH_RUNNER'/],
      [`${HEAD}do:\n  - a:\n      set: {x: '\${ .x | }'}\n`, /\/do\/0\/a\/set\/x: bad jq expression/],
      [`${HEAD}do:\n  - a:\n      sett: {x: 1}\n`, /\/do\/0\/a: unknown task type/],
      [`${HEAD}do:\n  - a:\n      set: {x: 1}\n      then: a\n`, /loop forever through 'then'/],
      ["document: {}\ndo: []\n", /\/document: must have required property 'dsl'/],
    ];
    for (const [yaml, re] of cases) {
      const r = await run({ workflow_data: yaml, input: "{}" });
      expect(r.status).toBe("FATAL_ERROR");
      expect(Buffer.from(r.output!.items).toString()).toMatch(re);
    }
    await expectAlive(fx);
  });

  it("streaming: a WorkflowEvent per engine event as it happens (real child job ids), an empty chunk, then the WorkflowResult", async () => {
    // storeSuccess on the run task's temporary worker: job_completed then names the stored result
    const yaml = `${HEAD}do:
  - hello:
      run:
        runner:
          name: COMMAND
          arguments: {command: /bin/echo, args: [hi]}
          options: {storeSuccess: true}
      output: {as: '{said: .stdout}'}
  - b:
      set: {said: '\${ .said }', n: 2}
`;
    const s = await collectSettled(fx.api.job.EnqueueForStream({ worker_id: { value: workerId }, args: wf.encodeArgs({ workflow_data: yaml, input: "{}" }, "run") }));
    expect(s.error, s.error?.details).toBeNull();
    expect(s.status?.code).toBe(Status.OK);
    expect(s.items.at(-1)!.item).toBe("end");
    const chunks = s.items.filter((i) => i.item === "data").map((i) => i.data!);
    // the events end at the empty chunk; the one after it (the last data chunk) is the method's result
    const sep = chunks.findIndex((c) => c.length === 0);
    expect(sep).toBe(chunks.length - 2);
    // events decoded with the contract's proto (jobworkerp.data.WorkflowEvent), loaded independently of the server
    const events = chunks.slice(0, sep).map((c) => decodeMessage("jobworkerp.data.WorkflowEvent", c));
    expect(events.map((e) => e.event)).toEqual(["task_started", "job_started", "job_completed", "task_completed", "task_started", "task_completed"]);
    const [t0, started, completed, t0done, t1, t1done] = events;
    expect(t0.task_started).toEqual({ task_type: "run", task_name: "hello", position: "/do/0/hello" });
    expect(started.job_started).toMatchObject({ runner_name: "COMMAND", position: "/do/0/hello" });
    expect(started.job_started.worker_name ?? "").toBe(""); // a runner's temporary worker has no name to report
    const childId = started.job_started.job_id.value;
    expect(BigInt(childId)).toBeGreaterThan(0n);
    expect(completed.job_completed.job_id.value).toBe(childId);
    expect(completed.job_completed.position).toBe("/do/0/hello");
    // the id is the real child job's: its stored result names it and carries the echo's output
    const resultId = completed.job_completed.job_result_id.value;
    const { response: stored } = await fx.api.jobResult.Find({ value: resultId });
    expect(stored.data!.data.job_id.value).toBe(childId);
    const cmd = await servedCodec(fx.api, "COMMAND");
    expect(cmd.decodeResult(stored.data!.data.output!.items).stdout).toBe("hi\n");
    expect(t0done.task_completed).toEqual({ task_type: "run", task_name: "hello", position: "/do/0/hello" });
    expect(t1.task_started).toEqual({ task_type: "set", task_name: "b", position: "/do/1/b" });
    expect(t1done.task_completed).toEqual({ task_type: "set", task_name: "b", position: "/do/1/b" });
    // the final result, decoded with the `run` method's served result_proto
    const final = wf.decodeResult(chunks.at(-1)!, "run");
    expect(final.status ?? "Completed", final.error_message).toBe("Completed");
    expect(final.position).toBe("/do/1/b");
    expect(JSON.parse(final.output)).toEqual({ said: "hi\n", n: 2 });
  });

  it("useStreaming: the child's chunks stream as streaming_data events and are collected into the unary run's output", async () => {
    const task = (streaming: boolean) => `${HEAD}do:
  - s:
      useStreaming: ${streaming}
      run:
        runner:
          name: COMMAND
          arguments: {command: sh, args: ["-c", "echo a; sleep 0.2; echo b"]}
      output: {as: '{exit_code, stdout, stderr}'}
`;
    const s = await collectSettled(fx.api.job.EnqueueForStream({ worker_id: { value: workerId }, args: wf.encodeArgs({ workflow_data: task(true), input: "{}" }, "run") }));
    expect(s.error, s.error?.details).toBeNull();
    const chunks = s.items.filter((i) => i.item === "data").map((i) => i.data!);
    const sep = chunks.findIndex((c) => c.length === 0);
    const events = chunks.slice(0, sep).map((c) => decodeMessage("jobworkerp.data.WorkflowEvent", c));
    const kinds = events.map((e) => e.event as string);
    expect(kinds[0]).toBe("task_started");
    expect(kinds[1]).toBe("streaming_job_started");
    expect(kinds.slice(-2)).toEqual(["streaming_job_completed", "task_completed"]);
    const data = events.filter((e) => e.event === "streaming_data").map((e) => e.streaming_data);
    expect(data.length).toBeGreaterThan(1); // stdout pieces, then the final chunk with the exit code
    const childId = events[1].streaming_job_started.job_id.value;
    expect(data.every((d) => d.job_id.value === childId)).toBe(true);
    // each chunk is the COMMAND method's result message, decoded with its served result_proto
    const cmd = await servedCodec(fx.api, "COMMAND");
    expect(data.map((d) => cmd.decodeResult(d.data).stdout ?? "").join("")).toBe("a\nb\n");
    const final = wf.decodeResult(chunks.at(-1)!, "run");
    expect(final.status ?? "Completed", final.error_message).toBe("Completed");
    const streamed = JSON.parse(final.output);
    expect(streamed).toEqual({ exit_code: 0, stdout: "a\nb\n", stderr: "" });
    expect(streamed).toEqual(await runOk(task(false)));
    // a failing streamed child faults the workflow as a unary one does
    const failing = `${HEAD}do:\n  - boom:\n      useStreaming: true\n      run:\n        runner:\n          name: COMMAND\n          arguments: {command: /bin/false, treat_nonzero_as_error: true}\n`;
    const r = await run({ workflow_data: failing, input: "{}" });
    const out = wf.decodeResult(r.output!.items, "run");
    expect(out.status).toBe("Faulted");
    expect(JSON.parse(out.error_message)).toMatchObject({ status: 500, instance: "/do/0/boom" });
  });

  it("run.worker and run.function (workerName / runnerName) run jobs on named workers and runners", async () => {
    const name = uniqueName("wf-echo");
    await createCommandWorker(fx.api, { name, response_type: "DIRECT" });
    const yaml = `${HEAD}do:
  - byWorker:
      run:
        worker: {name: ${name}, arguments: {command: /bin/echo, args: [w]}}
      output: {as: '{w: .stdout}'}
  - byFunctionWorker:
      run:
        function: {workerName: ${name}, arguments: {command: /bin/echo, args: ['\${ .w + "f" }']}}
      output: {as: '$input + {fw: .stdout}'}
  - byFunctionRunner:
      run:
        function: {runnerName: COMMAND, arguments: {command: /bin/echo, args: [r]}}
      output: {as: '$input + {fr: .stdout}'}
`;
    expect(await runOk(yaml)).toEqual({ w: "w\n", fw: "w\nf\n", fr: "r\n" });
  });

  it("run.shell passes arguments and environment; return selects stdout / code / all", async () => {
    const yaml = `${HEAD}do:
  - sh:
      run:
        shell:
          command: 'printf "%s %s %s" "$GREETING" "$1" "$2"'
          arguments: [hello, '\${ .who }']
          environment: {GREETING: '\${ .g }'}
      output: {as: '{out: .}'}
  - code:
      run:
        shell: {command: 'echo oops >&2; exit 3'}
        return: code
      output: {as: '$input + {code: .}'}
  - all:
      run:
        shell: {command: 'echo out; echo err >&2'}
        return: all
      output: {as: '$input + {all: .}'}
`;
    expect(await runOk(yaml, { who: "bob", g: "hi" })).toEqual({ out: "hi hello bob", code: 3, all: { code: 0, stdout: "out\n", stderr: "err\n" } });
  });

  it("run.script runs python through PYTHON_COMMAND with arguments on stdin and the environment", async () => {
    const yaml = `${HEAD}do:
  - py:
      run:
        script:
          language: python
          code: |
            import json, os, sys
            d = json.load(sys.stdin)
            print(d["x"] * 2, os.environ["MODE"])
          arguments: {x: '\${ .x }'}
          environment: {MODE: fast}
      output: {as: '{py: .}'}
`;
    expect(await runOk(yaml, { x: 21 })).toEqual({ py: "42 fast\n" });
  }, 120_000);

  it("await: false enqueues the job and goes on with the task's input as its output", async () => {
    const flag = join(dir, "background.txt");
    const yaml = `${HEAD}do:
  - bg:
      run:
        await: false
        shell: {command: 'sleep 1; echo done > ${flag}'}
  - next:
      set: {x: '\${ .x }'}
`;
    expect(await runOk(yaml, { x: 1 })).toEqual({ x: 1 });
    expect(existsSync(flag), "the workflow waited for the background job").toBe(false);
    await waitUntil(() => existsSync(flag), { timeoutMs: 20_000, what: "the background job to run" });
  });

  it("deleting a workflow job cancels the job it started: the child ends CANCELLED and its process is gone", async () => {
    const child = await createCommandWorker(fx.api, { name: uniqueName("wf-child"), response_type: "DIRECT", store_failure: true, broadcast_results: true });
    const childName = (await fx.api.worker.Find({ value: child })).response.data!.data.name;
    const { response: bg } = await fx.api.worker.Create({ name: uniqueName("wf-bg"), runner_id: { value: 32769 }, runner_settings: wf.encodeSettings({}), response_type: "NO_RESULT", retry_policy: { type: "NONE" } });
    const pidFile = join(dir, "child.pid");
    const yaml = `${HEAD}do:
  - long:
      run:
        worker: {name: ${childName}, arguments: {command: /bin/sh, args: ["-c", "echo $$ > ${pidFile}; exec sleep 30"]}}
`;
    const started = await fx.api.job.Enqueue({ worker_id: { value: bg.id.value }, args: wf.encodeArgs({ workflow_data: yaml, input: "{}" }, "run"), timeout: 60_000 });
    await waitUntil(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "", { timeoutMs: 20_000, what: "the child process" });
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    expect(alive(pid)).toBe(true);
    await fx.api.job.Delete({ value: started.response.id.value });
    const result = await waitUntil(async () => (await collect(fx.api.jobResult.FindListBy({ worker_ids: [{ value: child }] })))[0], { timeoutMs: 15_000, what: "the child's result" });
    expect(result.data.status).toBe("CANCELLED");
    await waitUntil(() => !alive(pid), { timeoutMs: 10_000, what: "the child process to end" });
  });

  it("useStreaming with await: false is rejected (jobworkerp), useStreaming alone runs the job to its result", async () => {
    const bad = `${HEAD}do:\n  - s:\n      useStreaming: true\n      run:\n        await: false\n        shell: {command: 'echo x'}\n`;
    const r = await run({ workflow_data: bad, input: "{}" });
    expect(r.status).toBe("FATAL_ERROR");
    expect(Buffer.from(r.output!.items).toString()).toMatch(/\/do\/0\/s: useStreaming cannot be combined with await: false/);
    const ok = `${HEAD}do:\n  - s:\n      useStreaming: true\n      run:\n        shell: {command: 'echo streamed'}\n`;
    expect(await runOk(ok)).toBe("streamed\n");
  });
});
