// Conformance cases written from the Serverless Workflow 1.0 DSL reference's examples (dsl-reference.md /
// dsl.md), adapted to our decisions (docs: workflow-dsl.md §2). Each case: workflow, input, expected output or
// error. Run tasks against the real job system are in test/e2e/workflow.test.ts; here `call: http` talks to
// a real HTTP server started by the test.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DefinitionError } from "../../worker-container/src/runners/workflow/errors.js";
import { prepareWorkflow, runWorkflow } from "../../worker-container/src/runners/workflow/workflow.js";

const HEAD = "document: {dsl: 1.0.0, namespace: test, name: conformance, version: 1.0.0}\n";
const ERR = "https://serverlessworkflow.io/spec/1.0.0/errors/";

interface Case {
  name: string;
  /** YAML after the `document` line; `BASE` in it is replaced by the test HTTP server's URL. */
  wf: string;
  input?: unknown;
  context?: Record<string, unknown>;
  output?: unknown;
  /** Expected error (a subset of its fields). */
  error?: Record<string, unknown>;
  /** Rejected before running: every regex must match one problem. */
  invalid?: RegExp[];
}

const cases: Case[] = [
  // ------------------------------------------------------------------ set / do / expressions
  { name: "set replaces the output", wf: "do:\n  - s:\n      set: {shape: circle, size: '${ .configuredSize }'}", input: { configuredSize: 3 }, output: { shape: "circle", size: 3 } },
  { name: "do chains outputs", wf: "do:\n  - a:\n      set: {x: 1}\n  - b:\n      set: {y: '${ .x + 1 }'}", output: { y: 2 } },
  { name: "set keys become $variables (jobworkerp)", wf: "do:\n  - a:\n      set: {x: 5}\n  - b:\n      set: {y: '${ $x * 2 }'}", output: { y: 10 } },
  { name: "mixed text is not interpolated", wf: "do:\n  - a:\n      set: {t: 'abc ${.x}'}", input: { x: 1 }, output: { t: "abc ${.x}" } },
  { name: "liquid with coercion", wf: "do:\n  - a:\n      set: {n: '$${{{ v }}}', s: '$${Hello {{ who }}}', b: '$${true}', f: '$${1.5}', app: \"$${{{ v | append: 'hoge' }}}\"}", input: { v: 1, who: "bob" }, output: { n: 1, s: "Hello bob", b: true, f: 1.5, app: "1hoge" } },
  { name: "context variables from workflow_context", wf: "do:\n  - a:\n      set: {u: '${ $user }'}", context: { user: "alice" }, output: { u: "alice" } },
  { name: "$workflow / $task / $runtime / $input", wf: "do:\n  - t1:\n      set: {wi: '${ $workflow.input.a }', tn: '${ $task.name }', tr: '${ $task.reference }', rn: '${ $runtime.name }', i: '${ $input.a }'}", input: { a: 7 }, output: { wi: 7, tn: "t1", tr: "/do/0/t1", rn: "jobworkerp-ts", i: 7 } },
  { name: "jq error is an expression error", wf: "do:\n  - a:\n      set: {x: '${ .a | error(\"boom\") }'}", input: { a: 1 }, error: { type: ERR + "expression", status: 400, instance: "/do/0/a" } },
  // ------------------------------------------------------------------ data flow
  { name: "input.from (bare expression)", wf: "do:\n  - a:\n      input: {from: .order}\n      set: {id: '${ .id }'}", input: { order: { id: 9 } }, output: { id: 9 } },
  { name: "input.from object template", wf: "do:\n  - a:\n      input: {from: {x: '${ .a }'}}\n      set: {v: '${ .x }'}", input: { a: 3 }, output: { v: 3 } },
  { name: "output.as", wf: "do:\n  - a:\n      set: {x: 1, y: 2}\n      output: {as: .y}", output: 2 },
  { name: "export.as replaces $context", wf: "do:\n  - a:\n      set: {x: 1}\n      export: {as: '{seen: .x}'}\n  - b:\n      set: {c: '${ $context }'}", output: { c: { seen: 1 } } },
  { name: "workflow input.from and output.as", wf: "input: {from: .payload}\ndo:\n  - a:\n      set: {v: '${ .n }'}\noutput: {as: .v}", input: { payload: { n: 4 } }, output: 4 },
  { name: "input schema rejects", wf: "input:\n  schema:\n    document: {type: object, required: [n]}\ndo:\n  - a:\n      set: {x: 1}", input: {}, error: { type: ERR + "validation", status: 400 } },
  { name: "input schema defaults", wf: "input:\n  schema:\n    document: {type: object, properties: {n: {type: number, default: 5}}}\ndo:\n  - a:\n      set: {x: '${ .n }'}", input: {}, output: { x: 5 } },
  { name: "task output schema rejects", wf: "do:\n  - a:\n      set: {x: 1}\n      output:\n        schema:\n          document: {type: object, required: [y]}", error: { type: ERR + "validation", instance: "/do/0/a/output" } },
  { name: "if false skips (output = input)", wf: "do:\n  - a:\n      if: .go\n      set: {x: 1}", input: { go: false }, output: { go: false } },
  { name: "if true runs", wf: "do:\n  - a:\n      if: '${ .go }'\n      set: {x: 1}", input: { go: true }, output: { x: 1 } },
  // ------------------------------------------------------------------ then
  { name: "then: task name jumps", wf: "do:\n  - a:\n      set: {n: 1}\n      then: c\n  - b:\n      set: {n: 2}\n  - c:\n      set: {m: '${ .n }'}", output: { m: 1 } },
  { name: "then: exit leaves the list", wf: "do:\n  - outer:\n      do:\n        - a:\n            set: {n: 1}\n            then: exit\n        - b:\n            set: {n: 2}\n  - after:\n      set: {m: '${ .n }'}", output: { m: 1 } },
  { name: "then: end stops the workflow", wf: "do:\n  - outer:\n      do:\n        - a:\n            set: {n: 1}\n            then: end\n  - after:\n      set: {n: 3}", output: { n: 1 } },
  { name: "conditional loop through then", wf: "do:\n  - inc:\n      set: {n: '${ .n + 1 }'}\n  - check:\n      switch:\n        - again: {when: .n < 3, then: inc}\n        - done: {then: exit}", input: { n: 0 }, output: { n: 3 } },
  // ------------------------------------------------------------------ switch
  { name: "switch picks the first match", wf: "do:\n  - s:\n      switch:\n        - elec: {when: '.type == \"electronic\"', then: e}\n        - def: {then: o}\n  - e:\n      set: {r: electronic}\n      then: end\n  - o:\n      set: {r: other}", input: { type: "electronic" }, output: { r: "electronic" } },
  { name: "switch default", wf: "do:\n  - s:\n      switch:\n        - elec: {when: '.type == \"electronic\"', then: e}\n        - def: {then: o}\n  - e:\n      set: {r: electronic}\n      then: end\n  - o:\n      set: {r: other}", input: { type: "food" }, output: { r: "other" } },
  { name: "switch without match continues", wf: "do:\n  - s:\n      switch:\n        - x: {when: .no, then: end}\n  - n:\n      set: {r: next}", input: { no: false }, output: { r: "next" } },
  // ------------------------------------------------------------------ for
  { name: "for chains iterations (spec)", wf: "do:\n  - f:\n      for: {each: x, in: .items}\n      do:\n        - add:\n            set: {sum: '${ .sum + $x }', items: '${ .items }'}", input: { sum: 0, items: [1, 2, 3] }, output: { sum: 6, items: [1, 2, 3] } },
  { name: "for default names item/index", wf: "do:\n  - f:\n      for: {in: '[\"a\",\"b\"]'}\n      do:\n        - s:\n            set: {last: '${ \"\\($index):\\($item)\" }'}", output: { last: "1:b" } },
  { name: "for while stops", wf: "do:\n  - f:\n      for: {each: x, in: '[1,2,3,4]'}\n      while: .n < 2\n      do:\n        - s:\n            set: {n: '${ .n + 1 }'}", input: { n: 0 }, output: { n: 2 } },
  { name: "for over empty list keeps input", wf: "do:\n  - f:\n      for: {in: '[]'}\n      do:\n        - s:\n            set: {x: 1}", input: { k: 1 }, output: { k: 1 } },
  { name: "for inParallel returns outputs", wf: "do:\n  - f:\n      for: {each: x, in: '[1,2,3]'}\n      inParallel: true\n      do:\n        - s:\n            set: {v: '${ $x * 10 }'}", output: [{ v: 10 }, { v: 20 }, { v: 30 }] },
  { name: "for onError continue", wf: "do:\n  - f:\n      for: {each: x, in: '[1,0,2]'}\n      onError: continue\n      do:\n        - s:\n            set: {v: '${ if $x == 0 then error(\"zero\") else .v + $x end }'}", input: { v: 0 }, output: { v: 3 } },
  { name: "for onError break (default) fails", wf: "do:\n  - f:\n      for: {each: x, in: '[1,0]'}\n      do:\n        - s:\n            set: {v: '${ if $x == 0 then error(\"zero\") else 1 end }'}", error: { type: ERR + "expression", instance: "/do/0/f/do/0/s" } },
  // ------------------------------------------------------------------ fork
  { name: "fork outputs an array", wf: "do:\n  - f:\n      fork:\n        branches:\n          - a:\n              set: {a: 1}\n          - b:\n              set: {b: 2}", output: [{ a: 1 }, { b: 2 }] },
  { name: "fork compete: first to finish wins", wf: "do:\n  - f:\n      fork:\n        compete: true\n        branches:\n          - slow:\n              do:\n                - w:\n                    wait: PT2S\n                - s:\n                    set: {w: slow}\n          - fast:\n              set: {w: fast}", output: { w: "fast" } },
  { name: "fork compete: all fail", wf: "do:\n  - f:\n      fork:\n        compete: true\n        branches:\n          - a:\n              raise: {error: {type: https://e/a, status: 400}}\n          - b:\n              raise: {error: {type: https://e/b, status: 400}}", error: { status: 400 } },
  // ------------------------------------------------------------------ raise / try
  { name: "raise the declared error", wf: "do:\n  - r:\n      raise:\n        error: {type: https://serverlessworkflow.io/spec/1.0.0/errors/validation, status: 400, title: Bad, detail: '${ \"no \" + .x }'}", input: { x: "pet" }, error: { type: ERR + "validation", status: 400, title: "Bad", detail: "no pet", instance: "/do/0/r" } },
  { name: "try catches by status and binds $error", wf: "do:\n  - t:\n      try:\n        - getPet:\n            raise: {error: {type: https://e/nf, status: 404, title: Not Found}}\n      catch:\n        errors: {with: {status: 404}}\n        as: err\n        do:\n          - h:\n              set: {caught: '${ $err.title }', at: '${ $err.instance }'}", output: { caught: "Not Found", at: "/do/0/t/try/0/getPet" } },
  { name: "try without catch.do continues with the input", wf: "do:\n  - t:\n      try:\n        - x:\n            raise: {error: {type: https://e/x, status: 500}}\n      catch: {}\n  - n:\n      set: {ok: true}", output: { ok: true } },
  { name: "errors.with type mismatch rethrows", wf: "do:\n  - t:\n      try:\n        - x:\n            raise: {error: {type: https://e/x, status: 500}}\n      catch:\n        errors: {with: {type: https://e/other}}", error: { type: "https://e/x", instance: "/do/0/t/try/0/x" } },
  { name: "errors.with short type name", wf: "do:\n  - t:\n      try:\n        - x:\n            set: {v: '${ error(\"e\") }'}\n      catch:\n        errors: {with: {type: expression}}\n        do:\n          - h:\n              set: {caught: true}", output: { caught: true } },
  { name: "catch.when false rethrows", wf: "do:\n  - t:\n      try:\n        - x:\n            raise: {error: {type: https://e/x, status: 500}}\n      catch:\n        when: .status == 400", error: { status: 500 } },
  { name: "catch.exceptWhen true rethrows", wf: "do:\n  - t:\n      try:\n        - x:\n            raise: {error: {type: https://e/x, status: 500}}\n      catch:\n        exceptWhen: .status == 500", error: { status: 500 } },
  { name: "retry until success (constant backoff)", wf: "do:\n  - t:\n      try:\n        - s:\n            set: {n: '${ $n + 1 }'}\n        - c:\n            if: .n < 3\n            raise: {error: {type: https://e/again, status: 503}}\n      catch:\n        retry:\n          delay: {milliseconds: 10}\n          backoff: {constant: {}}\n          limit: {attempt: {count: 5}}", context: { n: 0 }, output: { n: 3 } },
  { name: "retry limit reached rethrows", wf: "do:\n  - t:\n      try:\n        - c:\n            raise: {error: {type: https://e/again, status: 503}}\n      catch:\n        retry:\n          delay: {milliseconds: 5}\n          backoff: {exponential: {}}\n          limit: {attempt: {count: 2}}", error: { type: "https://e/again", status: 503 } },
  // ------------------------------------------------------------------ wait / timeouts
  { name: "wait passes the input through", wf: "do:\n  - w:\n      wait: {milliseconds: 20}", input: { a: 1 }, output: { a: 1 } },
  { name: "wait ISO 8601", wf: "do:\n  - w:\n      wait: PT0.02S", input: { a: 2 }, output: { a: 2 } },
  { name: "task timeout", wf: "do:\n  - w:\n      wait: PT5S\n      timeout: {after: {milliseconds: 50}}", error: { type: ERR + "timeout", status: 408, instance: "/do/0/w" } },
  { name: "named timeout + try catches timeouts", wf: "use:\n  timeouts:\n    short: {after: PT0.05S}\ndo:\n  - t:\n      try:\n        - w:\n            wait: PT5S\n            timeout: short\n      catch:\n        errors: {with: {type: timeout}}\n        do:\n          - h:\n              set: {timedOut: true}", output: { timedOut: true } },
  { name: "workflow timeout", wf: "timeout: {after: {milliseconds: 50}}\ndo:\n  - w:\n      wait: PT5S", error: { type: ERR + "timeout" } },
  // ------------------------------------------------------------------ call http
  { name: "call http GET with URI template", wf: "do:\n  - g:\n      call: http\n      with: {method: get, endpoint: 'BASE/pets/{petId}'}", input: { petId: 42 }, output: { path: "/pets/42", method: "GET" } },
  { name: "call http POST body + headers + query, output response", wf: "do:\n  - p:\n      call: http\n      with:\n        method: post\n        endpoint: {uri: BASE/echo}\n        headers: {x-test: '${ .h }'}\n        query: {q: a b}\n        body: {name: '${ .n }'}\n        output: response\n      output: {as: '{code: .statusCode, got: .content}'}", input: { h: "yes", n: "rex" }, output: { code: 200, got: { path: "/echo?q=a+b", method: "POST", header: "yes", body: { name: "rex" } } } },
  { name: "call http basic auth from use.authentications", wf: "use:\n  authentications:\n    me: {basic: {username: u, password: p}}\ndo:\n  - g:\n      call: http\n      with: {method: get, endpoint: {uri: BASE/auth, authentication: {use: me}}}", output: { auth: "Basic dTpw" } },
  { name: "call http bearer auth", wf: "do:\n  - g:\n      call: http\n      with: {method: get, endpoint: {uri: BASE/auth, authentication: {bearer: {token: t0k}}}}", output: { auth: "Bearer t0k" } },
  { name: "call http raw output", wf: "do:\n  - g:\n      call: http\n      with: {method: get, endpoint: BASE/text, output: raw}", output: Buffer.from("plain").toString("base64") },
  { name: "call http non-2xx is a communication error", wf: "do:\n  - g:\n      call: http\n      with: {method: get, endpoint: BASE/missing}", error: { type: ERR + "communication", status: 404, instance: "/do/0/g" } },
  // ------------------------------------------------------------------ nested workflow
  { name: "run.workflow nested (inherits context variables)", wf: "do:\n  - a:\n      set: {k: 2}\n  - n:\n      run:\n        workflow:\n          workflowData: {document: {dsl: 1.0.0, namespace: t, name: child, version: 1.0.0}, do: [{c: {set: {v: '${ .x * $k }'}}}]}\n          input: {x: 21}", output: { v: 42 } },
  // ------------------------------------------------------------------ rejected before running
  { name: "schema: missing document fields", wf: "", invalid: [/^\/: must have required property 'do'/] },
  { name: "schema: unknown task type names the task", wf: "do:\n  - a:\n      frobnicate: {}", invalid: [/^\/do\/0\/a: unknown task type/] },
  { name: "schema: unknown field", wf: "do:\n  - a:\n      set: {x: 1}\n      sett: 2", invalid: [/^\/do\/0\/a: unknown field 'sett'/] },
  { name: "schema: bad for", wf: "do:\n  - f:\n      for: {each: x}\n      do: []", invalid: [/^\/do\/0\/f\/for: must have required property 'in'/] },
  { name: "jq syntax error names the field", wf: "do:\n  - a:\n      do:\n        - b:\n            if: .x ==\n            set: {y: 1}", invalid: [/^\/do\/0\/a\/do\/0\/b\/if: bad jq expression/] },
  { name: "jq syntax error in a free-form value", wf: "do:\n  - a:\n      set: {y: '${ .x | }'}", invalid: [/^\/do\/0\/a\/set\/y: bad jq expression/] },
  { name: "then names an unknown task", wf: "do:\n  - a:\n      set: {y: 1}\n      then: nowhere", invalid: [/^\/do\/0\/a\/then: no task named 'nowhere'/] },
  { name: "unconditional cycle through then", wf: "do:\n  - a:\n      set: {y: 1}\n  - b:\n      set: {y: 2}\n      then: a", invalid: [/^\/do: the tasks 'a' → 'b' → 'a' loop forever/] },
  { name: "listen is not supported", wf: "do:\n  - l:\n      listen: {to: {one: {with: {type: x}}}}", invalid: [/^\/do\/0\/l: 'listen' tasks are not supported/] },
];

let server: Server;
let base = "";

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const json = (code: number, v: unknown) => {
        res.writeHead(code, { "content-type": "application/json" });
        res.end(JSON.stringify(v));
      };
      const url = req.url ?? "/";
      if (url.startsWith("/pets/")) return json(200, { path: url, method: req.method });
      if (url.startsWith("/echo")) return json(200, { path: url, method: req.method, header: req.headers["x-test"], body: JSON.parse(body || "null") });
      if (url === "/auth") return json(200, { auth: req.headers.authorization });
      if (url === "/text") {
        res.writeHead(200, { "content-type": "text/plain" });
        return res.end("plain");
      }
      json(404, { error: "not found" });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("workflow conformance (spec examples)", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s", async (_, c) => {
    const text = HEAD + c.wf.replace(/BASE/g, base);
    if (c.invalid) {
      const err = await prepareWorkflow({ data: text }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DefinitionError);
      const problems = (err as DefinitionError).problems;
      for (const re of c.invalid) expect(problems.some((p) => re.test(p)), `${problems.join("\n")} ~ ${re}`).toBe(true);
      return;
    }
    const def = await prepareWorkflow({ data: text });
    const out = await runWorkflow(def, { input: c.input ?? {}, context: c.context, loadOptions: { allowPrivateUrls: true } });
    if (c.error) {
      expect(out.status, JSON.stringify(out.output)).toBe("Faulted");
      expect(out.error).toMatchObject(c.error);
    } else {
      expect(out.error, JSON.stringify(out.error)).toBeUndefined();
      expect(out.status).toBe("Completed");
      expect(out.output).toEqual(c.output);
    }
  });

  it("events: task started/completed and for_item_failed", async () => {
    const def = await prepareWorkflow({ data: parse(HEAD + "do:\n  - f:\n      for: {each: x, in: '[0]'}\n      onError: continue\n      do:\n        - s:\n            set: {v: '${ error(\"x\") }'}") });
    const events: unknown[] = [];
    await runWorkflow(def, { onEvent: (e) => events.push(e) });
    expect(events[0]).toEqual({ task_started: { task_type: "for", task_name: "f", position: "/do/0/f" } });
    expect(events.some((e) => "for_item_failed" in (e as object))).toBe(true);
    expect(events.at(-1)).toEqual({ task_completed: { task_type: "for", task_name: "f", position: "/do/0/f" } });
  });

  it("cancellation stops a running workflow", async () => {
    const def = await prepareWorkflow({ data: HEAD + "do:\n  - w:\n      wait: PT10S" });
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(new Error("stop")), 30);
    const out = await runWorkflow(def, { signal: ctrl.signal });
    expect(out.status).toBe("Cancelled");
  });

  it("private-network URLs are refused unless allowed", async () => {
    await expect(prepareWorkflow({ url: `${base}/wf.yaml` })).rejects.toThrow(/private network/);
  });
});
