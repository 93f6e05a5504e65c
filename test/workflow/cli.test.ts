// `jobworkerp workflow run|validate FILE` as a user runs it: the real bin in a child process, no server.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "jwp-workflow-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("node", ["bin/jobworkerp.mjs", "workflow", ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const GREET = `
document: { dsl: "1.0.0", namespace: test, name: greet, version: "1.0.0" }
do:
  - shout:
      run:
        shell:
          command: \${ "echo hello " + .name }
  - answer:
      set:
        greeting: \${ . | rtrimstr("\\n") } # a shell task's output is its stdout (return: stdout)
        n: \${ $workflow.input.n * 2 } # $input is the task's input; the workflow's is $workflow.input
`;

const BOOM = `
document: { dsl: "1.0.0", namespace: test, name: boom, version: "1.0.0" }
do:
  - boom:
      raise:
        error:
          type: https://serverlessworkflow.io/spec/1.0.0/errors/validation
          status: 400
          title: nope
`;

describe("jobworkerp workflow (CLI, embedded, no server)", () => {
  it("run prints the output as JSON and exits 0 (a shell task runs through the real job system)", { timeout: 60_000 }, async () => {
    const r = await cli("run", file("greet.yaml", GREET), "--input", '{"name":"ada","n":21}');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ greeting: "hello ada", n: 42 });
  });

  it("--events writes one JSON line per event to stderr", { timeout: 60_000 }, async () => {
    const r = await cli("run", file("greet2.yaml", GREET), "--input", '{"name":"bo","n":1}', "--events");
    expect(r.code, r.stderr).toBe(0);
    const events = r.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    expect(events.length).toBeGreaterThanOrEqual(2);
  });

  it("a faulted workflow prints the error object and exits 1", { timeout: 60_000 }, async () => {
    const r = await cli("run", file("boom.yaml", BOOM));
    expect(r.code).toBe(1);
    const err = JSON.parse(r.stdout);
    expect(err).toMatchObject({ status: 400, title: "nope", instance: "/do/0/boom" });
  });

  it("validate: a good file is valid (exit 0); a bad one names the place (exit 1); bad usage exits 2", { timeout: 60_000 }, async () => {
    const good = await cli("validate", file("ok.yaml", GREET));
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toEqual({ valid: true });
    const bad = await cli("validate", file("bad.yaml", GREET.replace("rtrimstr", "rtrimstr(")));
    expect(bad.code).toBe(1);
    const out = JSON.parse(bad.stdout);
    expect(out.valid).toBe(false);
    expect(JSON.stringify(out.problems)).toMatch(/\/do\/1\/answer/);
    expect((await cli("frobnicate")).code).toBe(2);
  });
});
