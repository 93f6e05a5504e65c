// The client commands of the real bin (`node bin/jobworkerp.mjs -a ADDR <group> <command> …`) against a
// running server: JSON settings/args encoded with the served protos, decoded results, streams, listens, and
// clear errors with the documented exit codes (1 failure, 2 usage, 3 job did not succeed).
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { shArgs } from "../helpers/client.js";
import { sleep, uniqueName, useServer } from "../helpers/fixture.js";
import { BIN_ENTRY, baseEnv } from "../helpers/proc.js";
import { freePort } from "../helpers/server.js";

const fx = useServer();
const SLOW = 90_000; // each test spawns several CLI processes; 2 shared cores can be busy

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the bin with `args` after `-a <server>` (unless `address` is given) and collects its output. */
function cli(args: string[], opts: { address?: string | null; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  const address = opts.address === undefined ? fx.server.address : opts.address;
  const argv = address === null ? args : ["-a", address, ...args];
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN_ENTRY, ...argv], { env: { ...baseEnv(), ...opts.env }, timeout: opts.timeoutMs ?? 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A failed run's stderr is one clear line: `error: …`, no stack trace. */
function expectCleanError(r: Run, code: number, text: RegExp): void {
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(code);
  expect(r.stderr).toMatch(/^error: /);
  expect(r.stderr).toMatch(text);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

const ok = (r: Run) => {
  expect(r.code, `stderr: ${r.stderr}\nstdout: ${r.stdout}`).toBe(0);
  return r.stdout;
};

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
});

describe("jobworkerp client commands", () => {
  it("runner list shows COMMAND and HTTP_REQUEST (table and --json)", async () => {
    const table = ok(await cli(["runner", "list"]));
    expect(table).toMatch(/^ID\s+NAME\s+RUNNER_TYPE/m);
    expect(table).toMatch(/COMMAND/);
    expect(table).toMatch(/HTTP_REQUEST/);
    const rows = JSON.parse(ok(await cli(["--json", "runner", "list"])));
    expect(rows.map((r: { name: string }) => r.name)).toEqual(expect.arrayContaining(["COMMAND", "HTTP_REQUEST"]));
  }, SLOW);

  it("worker create / find / list / update / delete with JSON settings", async () => {
    const name = uniqueName("cli-http");
    const created = JSON.parse(
      ok(await cli(["worker", "create", "-n", name, "-r", "HTTP_REQUEST", "-s", '{"base_url":"http://127.0.0.1:1/a"}', "--response-type", "NO_RESULT", "--store-failure", "--json"])),
    );
    expect(Number(created.id)).toBeGreaterThan(0);

    const found = JSON.parse(ok(await cli(["worker", "find", "-i", name, "--json"])));
    expect(found).toMatchObject({ id: created.id, name, runner: "HTTP_REQUEST", response_type: "NO_RESULT", store_failure: true, store_success: false, runner_settings: { base_url: "http://127.0.0.1:1/a" } });
    const card = ok(await cli(["worker", "find", "-i", created.id]));
    expect(card).toContain(name);
    expect(card).toContain('"base_url": "http://127.0.0.1:1/a"');

    const listed = ok(await cli(["worker", "list", "--name-filter", name]));
    expect(listed).toMatch(new RegExp(`^${created.id}\\s+${name}\\s+HTTP_REQUEST`, "m"));

    ok(await cli(["worker", "update", "-i", name, "-s", '{"baseUrl":"http://127.0.0.1:2/b"}', "-d", "changed", "--no-store-failure", "--broadcast-results", "--retry-type", "CONSTANT", "--retry-max", "2", "--retry-interval", "10"]));
    const updated = JSON.parse(ok(await cli(["worker", "find", "-n", name, "--json"])));
    expect(updated).toMatchObject({ description: "changed", store_failure: false, broadcast_results: true, runner_settings: { base_url: "http://127.0.0.1:2/b" }, retry_policy: { type: "CONSTANT", max_retry: 2, interval: 10 } });

    expect(ok(await cli(["worker", "delete", "-i", created.id]))).toContain(`deleted worker ${created.id}`);
    expectCleanError(await cli(["worker", "find", "-i", created.id]), 1, new RegExp(`NOT_FOUND: worker id ${created.id} not found`));
  }, SLOW);

  it("enqueue to a DIRECT COMMAND worker prints the decoded result (--json and table); NO_RESULT prints the job id", async () => {
    const name = uniqueName("cli-cmd");
    ok(await cli(["worker", "create", "-n", name, "-r", "COMMAND", "-s", "{}", "--retry-type", "NONE"])); // DIRECT by default, as jobworkerp-client
    const args = JSON.stringify({ command: "echo", args: ["hello", "cli"] });

    const json = JSON.parse(ok(await cli(["job", "enqueue", "-w", name, "-a", args, "--json"])));
    expect(json).toMatchObject({ status: "SUCCESS", worker_name: name, output: { exit_code: 0, stdout: "hello cli\n" }, args: { command: "echo", args: ["hello", "cli"] } });
    expect(Number(json.job_id)).toBeGreaterThan(0);

    const table = ok(await cli(["job", "enqueue", "-w", name, "--args", args, "-p", "HIGH", "-t", "10000"]));
    expect(table).toMatch(/^status\s+SUCCESS$/m);
    expect(table).toContain('"stdout": "hello cli\\n"');

    // a job that fails: the result is printed and the exit code is 3
    const failed = await cli(["job", "enqueue", "-w", name, "-a", JSON.stringify({ command: "sh", args: ["-c", "exit 3"], treat_nonzero_as_error: true }), "--json"]);
    expect(failed.code, failed.stderr).toBe(3);
    expect(JSON.parse(failed.stdout).status).not.toBe("SUCCESS");

    const nr = uniqueName("cli-nr");
    ok(await cli(["worker", "create", "-n", nr, "-r", "1", "--response-type", "NO_RESULT"]));
    expect(ok(await cli(["job", "enqueue", "-w", nr, "-a", args]))).toMatch(/^enqueued job \d+\n$/);
    const enq = JSON.parse(ok(await cli(["job", "enqueue", "-w", nr, "-a", args, "--json", "--run-after", "+60s"])));
    const found = JSON.parse(ok(await cli(["job", "find", "-i", enq.job_id, "--json"])));
    expect(found).toMatchObject({ id: enq.job_id, args: { command: "echo", args: ["hello", "cli"] } });
    expect(ok(await cli(["job", "delete", "-i", enq.job_id]))).toContain(`deleted job ${enq.job_id}`);
  }, SLOW);

  it("enqueue-for-stream prints the chunks as they come, then the final status", async () => {
    const name = uniqueName("cli-stream");
    ok(await cli(["worker", "create", "-n", name, "-r", "COMMAND", "--response-type", "NO_RESULT"]));
    const args = JSON.stringify({ command: "sh", args: ["-c", "echo one; sleep 0.3; echo two"] });
    const lines = ok(await cli(["--json", "job", "enqueue-for-stream", "-w", name, "-a", args]))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const stdout = lines.map((l) => l.chunk?.stdout ?? "").join("");
    expect(stdout).toBe("one\ntwo\n");
    expect(lines.at(-1)).toMatchObject({ status: "SUCCESS" });
    expect(Number(lines[0].job_id)).toBeGreaterThan(0);

    const human = ok(await cli(["job", "enqueue-for-stream", "-w", name, "-a", args]));
    expect(human).toMatch(/"stdout":"one\\n"/);
    expect(human).toMatch(/^status: SUCCESS \(job \d+\)$/m);
  }, SLOW);

  it("job-result listen-by-worker prints a broadcast result while jobs run", async () => {
    const name = uniqueName("cli-listen");
    const { id } = JSON.parse(ok(await cli(["worker", "create", "-n", name, "-r", "COMMAND", "--response-type", "NO_RESULT", "--broadcast-results", "--json"])));
    const child = spawn(process.execPath, [BIN_ENTRY, "-a", fx.server.address, "job-result", "listen-by-worker", "-w", name, "--count", "1", "--json"], { env: baseEnv() });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b) => (stdout += b));
    child.stderr.on("data", (b) => (stderr += b));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    // the subscription is not observable from outside: enqueue until the listener has seen one result
    let done = false;
    void exited.then(() => (done = true));
    for (let i = 0; i < 40 && !done; i++) {
      await fx.api.job.Enqueue({ worker_id: { value: id }, args: shArgs(`echo listened-${i}`) });
      await Promise.race([exited, sleep(500)]);
    }
    expect(await exited, stderr).toBe(0);
    children.delete(child);
    const line = JSON.parse(stdout.trim());
    expect(line).toMatchObject({ worker_name: name, status: "SUCCESS", output: { stdout: expect.stringMatching(/^listened-\d+\n$/) } });
  }, SLOW);

  it("job-result listen waits for a job; list and find show stored results decoded", async () => {
    const name = uniqueName("cli-results");
    ok(await cli(["worker", "create", "-n", name, "-r", "COMMAND", "--response-type", "NO_RESULT", "--broadcast-results", "--store-success"]));
    // run 2 s later, so the listen below is in place before the job finishes
    const { job_id } = JSON.parse(ok(await cli(["job", "enqueue", "-w", name, "-a", '{"command":"echo","args":["stored"]}', "--run-after", "+2s", "--json"])));
    const heard = JSON.parse(ok(await cli(["job-result", "listen", "-j", job_id, "-w", name, "-t", "20000", "--json"])));
    expect(heard).toMatchObject({ job_id, status: "SUCCESS", output: { stdout: "stored\n" } });

    const listed = JSON.parse(ok(await cli(["job-result", "list", "-w", name, "--status", "SUCCESS", "--json"])));
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ job_id, worker_name: name, output: { stdout: "stored\n" }, args: { command: "echo" } });
    const card = ok(await cli(["job-result", "find", "-i", listed[0].id]));
    expect(card).toMatch(new RegExp(`^job_id\\s+${job_id}$`, "m"));
    expect(card).toContain('"stdout": "stored\\n"');
  }, SLOW);

  it("lists job statuses and worker instances", async () => {
    expect(Array.isArray(JSON.parse(ok(await cli(["job-status", "list", "--json"]))))).toBe(true);
    const instances = ok(await cli(["worker-instance", "list"]));
    expect(instances).toMatch(/^ID\s+IP_ADDRESS|^\(none\)$/m);
  }, SLOW);

  it("errors: exit non-zero with one clear line and no stack trace", async () => {
    const name = uniqueName("cli-err");
    ok(await cli(["worker", "create", "-n", name, "-r", "COMMAND"]));
    const [unknownWorker, badJson, unknownField, wrongType, missingFlag, unknownFlag, unknownCommand] = await Promise.all([
      cli(["job", "enqueue", "-w", "no-such-worker", "-a", "{}"]),
      cli(["job", "enqueue", "-w", name, "-a", "{not json"]),
      cli(["job", "enqueue", "-w", name, "-a", '{"comand":"echo"}']),
      cli(["job", "enqueue", "-w", name, "-a", '{"command":5}']),
      cli(["job", "enqueue", "-a", "{}"]),
      cli(["worker", "list", "--bogus"]),
      cli(["worker", "frobnicate"]),
    ]);
    expectCleanError(unknownWorker, 1, /NOT_FOUND: worker 'no-such-worker' not found/);
    expectCleanError(badJson, 2, /--args is not valid JSON/);
    expectCleanError(unknownField, 2, /--args: comand: no such field in CommandArgs/);
    expectCleanError(wrongType, 2, /--args: command: expected a string, got 5/);
    expectCleanError(missingFlag, 2, /missing required flag --worker/);
    expectCleanError(unknownFlag, 2, /--bogus/);
    expectCleanError(unknownCommand, 2, /unknown command 'worker frobnicate'/);

    const port = await freePort(); // nothing listens there
    const [unreachable, badAddress] = await Promise.all([cli(["runner", "list"], { address: `http://127.0.0.1:${port}` }), cli(["runner", "list"], { address: "ftp://x" })]);
    expectCleanError(unreachable, 1, new RegExp(`UNAVAILABLE: cannot connect to http://127.0.0.1:${port}`));
    expectCleanError(badAddress, 2, /invalid address 'ftp:\/\/x'/);
  }, SLOW);
});
