// FunctionService and FunctionSetService through gRPC: runners and workers listed as functions with JSON
// Schemas, called with JSON arguments (results as JSON, streamed or not), function set CRUD, and the LLM
// runner offering a function set's tools (against the LLM protocol double).
import { execFile } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status, collect, collectSettled, expectRpcError, healthCheck } from "../helpers/client.js";
import { createCommandWorker, expectAlive, expectCode, uniqueName, useServer, waitUntil } from "../helpers/fixture.js";
import { FunctionsApi, type FunctionSpecs } from "../helpers/functions_client.js";
import { startLlmDouble, type LlmDouble } from "../helpers/openai_double.js";
import { REPO_ROOT } from "../helpers/protos.js";
import { servedCodec } from "../helpers/served_protos.js";

const KEY = "e2e-fn-key";
const fx = useServer({ env: { LLM_API_KEY: KEY } });
let fns: FunctionsApi;
let httpServer: http.Server;
let baseUrl = "";

beforeAll(async () => {
  fns = new FunctionsApi(fx.api);
  httpServer = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`hello from ${req.url}`);
  });
  await new Promise<void>((r) => httpServer.listen(0, "127.0.0.1", () => r()));
  baseUrl = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
});
afterAll(async () => {
  fns?.close();
  await new Promise<void>((r) => httpServer.close(() => r()));
});

const schemaOf = (s: FunctionSpecs, method = "run") => JSON.parse(s.methods!.schemas[method].arguments_schema);
const directWorker = (name: string, extra = {}) => createCommandWorker(fx.api, { name, description: "runs a command", response_type: "DIRECT", ...extra });
const temporaryWorkers = async () =>
  (await collect(fx.api.worker.FindList({}))).filter((w) => w.data.name.startsWith("__function_call_")).map((w) => w.data.name);

describe("FunctionService", () => {
  it("FindList: runners and workers with JSON Schemas; exclude flags; Find and FindByName", async () => {
    const name = uniqueName("fn-list");
    const workerId = await directWorker(name);
    const all = await fns.listFunctions();
    const command = all.find((s) => s.name === "COMMAND" && !s.worker_id)!;
    expect(command).toMatchObject({ runner_type: "COMMAND", runner_id: { value: "1" }, settings_schema: "" });
    expect(schemaOf(command).properties.command).toEqual({ type: "string" });
    expect(schemaOf(command).properties.args).toEqual({ type: "array", items: { type: "string" } });
    expect(JSON.parse(command.methods!.schemas.run.result_schema!).properties.exit_code).toEqual({ type: "integer" });
    expect(command.methods!.schemas.run.output_type).toBe("BOTH");
    const httpRunner = all.find((s) => s.name === "HTTP_REQUEST" && !s.worker_id)!;
    expect(JSON.parse(httpRunner.settings_schema).properties.base_url).toEqual({ type: "string" });
    expect(schemaOf(httpRunner).properties.path).toEqual({ type: "string" });
    const worker = all.find((s) => s.name === name)!;
    expect(worker).toMatchObject({ runner_type: "COMMAND", runner_id: { value: "1" }, worker_id: { value: workerId }, description: "runs a command", settings_schema: "" });
    expect(schemaOf(worker)).toEqual(schemaOf(command));

    const onlyWorkers = await fns.listFunctions({ exclude_runner: true });
    expect(onlyWorkers.every((s) => s.worker_id)).toBe(true);
    expect(onlyWorkers.some((s) => s.name === name)).toBe(true);
    const onlyRunners = await fns.listFunctions({ exclude_worker: true });
    expect(onlyRunners.some((s) => s.worker_id)).toBe(false);
    expect(onlyRunners.map((s) => s.name)).toEqual(expect.arrayContaining(["COMMAND", "HTTP_REQUEST"]));

    expect((await fns.fn.FindByName({ worker_name: name })).response.data?.worker_id?.value).toBe(workerId);
    expect((await fns.fn.FindByName({ runner_name: "HTTP_REQUEST" })).response.data?.runner_id.value).toBe("2");
    expect((await fns.fn.FindByName({ worker_name: "no-such-worker" })).response.data).toBeUndefined();
    expect((await fns.fn.Find({ function_id: { worker_id: { value: workerId } } })).response.data?.name).toBe(name);
    expect(Object.keys((await fns.fn.Find({ function_id: { runner_id: { value: 1 } }, using: "run" })).response.data!.methods!.schemas)).toEqual(["run"]);
    expect((await fns.fn.Find({ function_id: { runner_id: { value: 1 } }, using: "nope" })).response.data).toBeUndefined();
    expect((await fns.fn.Find({ function_id: { runner_id: { value: 999_999 } } })).response.data).toBeUndefined();
  });

  it("Call a worker with JSON args: the result as JSON with status and last_info; streamed chunks; a failed job", async () => {
    const name = uniqueName("fn-call");
    await directWorker(name);
    const [r, ...rest] = await fns.call({ worker_name: name, args_json: JSON.stringify({ command: "echo", args: ["hi", "there"] }) });
    expect(rest).toEqual([]);
    expect(r.status).toBe("SUCCESS");
    expect(JSON.parse(r.output)).toMatchObject({ exit_code: 0, stdout: "hi there\n" });
    expect(Number(r.last_info!.job_id)).toBeGreaterThan(0);
    expect(Number(r.last_info!.completed_at)).toBeGreaterThanOrEqual(Number(r.last_info!.started_at));

    const streamed = await fns.call({
      worker_name: name,
      args_json: JSON.stringify({ command: "sh", args: ["-c", "echo one; sleep 0.2; echo two"] }),
      options: { streaming: true, timeout_ms: 20_000 },
    });
    const last = streamed.at(-1)!;
    expect(last).toMatchObject({ status: "SUCCESS", output: "" });
    const chunks = streamed.slice(0, -1).map((c) => JSON.parse(c.output));
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks.map((c) => c.stdout ?? "").join("")).toBe("one\ntwo\n");

    const failed = await fns.call({ worker_name: name, args_json: JSON.stringify({ command: "/nonexistent/cmd-xyz" }) });
    expect(failed).toHaveLength(1);
    expect(failed[0].status).not.toBe("SUCCESS");
    expect(failed[0].error_code).toBe(failed[0].status);
    expect(failed[0].error_message).toBeTruthy();
  });

  it("a client that cancels a streaming Call cancels its job", async () => {
    const name = uniqueName("fn-cancel");
    const workerId = await directWorker(name);
    const call = fns.fn.Call({ worker_name: name, args_json: JSON.stringify({ command: "sh", args: ["-c", "echo started; sleep 60"] }), options: { streaming: true } });
    await new Promise<void>((resolve, reject) => {
      call.on("data", () => resolve());
      call.on("error", reject);
    });
    const running = async () =>
      (await collect(fx.api.job.FindListWithProcessingStatus({ status: "RUNNING", limit: 1000 }))).filter((j) => j.job.data.worker_id.value === workerId);
    expect(await running()).toHaveLength(1);
    call.cancel();
    await waitUntil(async () => (await running()).length === 0, { timeoutMs: 15_000, what: "the job to be cancelled" });
  });

  it("Call runners: COMMAND with JSON args, HTTP_REQUEST with settings_json; their temporary workers are gone after", async () => {
    const [c] = await fns.call({ runner_name: "COMMAND", args_json: '{"command":"echo","args":["via-runner"]}' });
    expect(c.status).toBe("SUCCESS");
    expect(JSON.parse(c.output).stdout).toBe("via-runner\n");

    const [h] = await fns.call({
      runner_name: "HTTP_REQUEST",
      runner_parameters: { settings_json: JSON.stringify({ base_url: baseUrl }) },
      args_json: JSON.stringify({ method: "GET", path: "/fn/path" }),
    });
    expect(h.status, h.error_message).toBe("SUCCESS");
    expect(JSON.parse(h.output)).toMatchObject({ status_code: 200, content: "hello from /fn/path" });
    expect(await temporaryWorkers()).toEqual([]);
  });

  it("CreateWorker / UpsertWorker from a runner with JSON settings; the worker is callable", async () => {
    const name = uniqueName("fn-made");
    const { response } = await fns.fn.CreateWorker({ runner_name: "HTTP_REQUEST", name, settings_json: JSON.stringify({ base_url: baseUrl }) });
    expect(response.worker_name).toBe(name);
    const [r] = await fns.call({ worker_name: name, args_json: '{"method":"GET","path":"/made"}' });
    expect(JSON.parse(r.output).content).toBe("hello from /made");
    const again = await fns.fn.UpsertWorker({ runner_id: { value: 2 }, name, description: "now described", settings_json: JSON.stringify({ base_url: baseUrl }) });
    expect(again.response.worker_id.value).toBe(response.worker_id.value);
    expect((await fx.api.worker.Find({ value: response.worker_id.value })).response.data?.data.description).toBe("now described");
    expectCode(await expectRpcError(fns.fn.CreateWorker({ runner_name: "HTTP_REQUEST", name })), Status.ALREADY_EXISTS);
    expectCode(await expectRpcError(fns.fn.CreateWorker({ runner_name: "NO_SUCH_RUNNER", name: uniqueName("x") })), Status.NOT_FOUND);
    expectCode(await expectRpcError(fns.fn.CreateWorker({ runner_name: "HTTP_REQUEST", name: uniqueName("x"), settings_json: "{bad" })), Status.INVALID_ARGUMENT);
  });

  it("errors: unknown function → NOT_FOUND, bad JSON or unknown fields → INVALID_ARGUMENT, no job runs; the server stays up", async () => {
    const name = uniqueName("fn-err");
    const workerId = await directWorker(name, { store_success: true, store_failure: true });
    const code = async (req: Parameters<FunctionsApi["call"]>[0]) => (await collectSettled(fns.fn.Call(req, { timeoutMs: 10_000 }))).error?.code;
    expect(await code({ worker_name: "no-such-worker", args_json: "{}" })).toBe(Status.NOT_FOUND);
    expect(await code({ runner_name: "NO_SUCH_RUNNER", args_json: "{}" })).toBe(Status.NOT_FOUND);
    expect(await code({ worker_name: name, args_json: "{not json" })).toBe(Status.INVALID_ARGUMENT);
    expect(await code({ worker_name: name, args_json: "[1, 2]" })).toBe(Status.INVALID_ARGUMENT);
    expect(await code({ worker_name: name, args_json: '{"no_such_field": 1}' })).toBe(Status.INVALID_ARGUMENT);
    expect(await code({ worker_name: name, args_json: '{"command": 42}' })).toBe(Status.INVALID_ARGUMENT);
    expect(await code({ args_json: "{}" })).toBe(Status.INVALID_ARGUMENT);
    expect(await code({ runner_name: "HTTP_REQUEST", runner_parameters: { settings_json: '{"base_url": 1}' }, args_json: "{}" })).toBe(Status.INVALID_ARGUMENT);
    expect(Number((await fx.api.jobResult.CountBy({ worker_ids: [{ value: workerId }] })).response.total)).toBe(0);
    expect((await collectSettled(fns.fn.FindListBySet({ name: "no-such-set" }))).error?.code).toBe(Status.NOT_FOUND);
    expectCode(await expectRpcError(fns.fn.FindByName({})), Status.INVALID_ARGUMENT);
    expect(await temporaryWorkers()).toEqual([]);
    await expectAlive(fx);
  });
});

describe("reflection and health", () => {
  it("an independent reflection client (buf curl, no local schema) lists and calls both services; health knows them", async () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "fn-reflection-"));
    const bufCurl = (args: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile(path.join(REPO_ROOT, "node_modules/.bin/buf"), ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { cwd, timeout: 20_000 }, (err, out, errOut) =>
          err ? reject(new Error(`${err.message}\n${out}${errOut}`)) : resolve(out),
        ),
      );
    const base = `http://${fx.server.address}`;
    const list = await bufCurl(["--list-services", base]);
    expect(list).toContain("jobworkerp.function.service.FunctionService");
    expect(list).toContain("jobworkerp.function.service.FunctionSetService");
    const found = JSON.parse(await bufCurl(["-d", '{"runner_name":"COMMAND"}', `${base}/jobworkerp.function.service.FunctionService/FindByName`]));
    expect(found.data.name).toBe("COMMAND");
    fs.rmSync(cwd, { recursive: true, force: true });
    for (const s of ["FunctionService", "FunctionSetService"]) expect(await healthCheck(fx.server.address, `jobworkerp.function.service.${s}`)).toBe("SERVING");
  });
});

describe("FunctionSetService", () => {
  it("CRUD round trip; FindDetail and FindListBySet describe the targets in order; names are unique", async () => {
    const worker = uniqueName("fs-worker");
    const workerId = await directWorker(worker);
    const name = uniqueName("set");
    const targets = [
      { function_id: { worker_id: { value: workerId } } },
      { function_id: { runner_id: { value: 1 } } },
      { function_id: { runner_id: { value: 2 } }, using: "run" },
      { function_id: { runner_id: { value: 1 } } }, // a duplicate, listed once
    ];
    const countBefore = Number((await fns.sets.Count({})).response.total);
    const { response: created } = await fns.sets.Create({ name, description: "my tools", category: 1, targets });
    const id = created.id.value;
    expect(BigInt(id)).toBeGreaterThan(0n);

    const found = (await fns.sets.Find({ value: id })).response.data!;
    expect(found.data).toMatchObject({ name, description: "my tools", category: 1 });
    expect(found.data.targets).toHaveLength(3);
    expect(found.data.targets[2]).toMatchObject({ function_id: { runner_id: { value: "2" } }, using: "run" });
    expect((await fns.sets.FindByName({ name })).response.data?.id.value).toBe(id);
    expect((await collect(fns.sets.FindList({}))).map((s) => s.id.value)).toContain(id);
    expect(Number((await fns.sets.Count({})).response.total)).toBe(countBefore + 1);

    const bySet = await collect(fns.fn.FindListBySet({ name }));
    expect(bySet.map((s) => [s.name, s.worker_id?.value])).toEqual([
      [worker, workerId],
      ["COMMAND", undefined],
      ["HTTP_REQUEST", undefined],
    ]);
    const detail = (await fns.sets.FindDetailByName({ name })).response.data!;
    expect(detail.data.targets.map((s) => s.name)).toEqual([worker, "COMMAND", "HTTP_REQUEST"]);
    expect((await fns.sets.FindDetail({ value: id })).response.data?.data.name).toBe(name);

    // duplicate names: on create and on update
    const other = (await fns.sets.Create({ name: uniqueName("set-other") })).response.id.value;
    expectCode(await expectRpcError(fns.sets.Create({ name })), Status.ALREADY_EXISTS);
    expectCode(await expectRpcError(fns.sets.Update({ id: { value: other }, data: { name } })), Status.ALREADY_EXISTS);

    const renamed = uniqueName("set-renamed");
    expect((await fns.sets.Update({ id: { value: id }, data: { name: renamed, targets: [{ function_id: { runner_id: { value: 1 } } }] } })).response.is_success).toBe(true);
    expect((await fns.sets.FindByName({ name })).response.data).toBeUndefined();
    expect((await collect(fns.fn.FindListBySet({ name: renamed }))).map((s) => s.name)).toEqual(["COMMAND"]);

    expect((await fns.sets.Delete({ value: id })).response.is_success).toBe(true);
    expect((await fns.sets.Find({ value: id })).response.data).toBeUndefined();
    expect((await fns.sets.FindDetail({ value: id })).response.data).toBeUndefined();
    expectCode(await expectRpcError(fns.sets.Delete({ value: id })), Status.NOT_FOUND);
    expectCode(await expectRpcError(fns.sets.Update({ id: { value: id }, data: { name: renamed } })), Status.NOT_FOUND);
    await fns.sets.Delete({ value: other });
  });

  it("bad input: empty name, unknown or empty targets → INVALID_ARGUMENT; bad paging → INVALID_ARGUMENT", async () => {
    expectCode(await expectRpcError(fns.sets.Create({ name: " " })), Status.INVALID_ARGUMENT);
    expectCode(await expectRpcError(fns.sets.Create({ name: uniqueName("s"), targets: [{ function_id: { worker_id: { value: 987_654_321 } } }] })), Status.INVALID_ARGUMENT);
    expectCode(await expectRpcError(fns.sets.Create({ name: uniqueName("s"), targets: [{ function_id: {} }] })), Status.INVALID_ARGUMENT);
    expect((await collectSettled(fns.sets.FindList({ limit: -1 }))).error?.code).toBe(Status.INVALID_ARGUMENT);
  });
});

describe("LLM runner with function_set_name", () => {
  let dbl: LlmDouble;
  beforeAll(async () => {
    dbl = await startLlmDouble({ apiKey: KEY });
  });
  afterAll(async () => {
    await dbl?.close();
  });

  it("offers exactly the set's tools and auto-calls one; an unknown set fails the job", async () => {
    const llm = await servedCodec(fx.api, "LLM");
    const toolName = uniqueName("set_tool");
    const toolId = await directWorker(toolName);
    await directWorker(uniqueName("not_in_set"));
    const setName = uniqueName("llm-set");
    await fns.sets.Create({ name: setName, targets: [{ function_id: { worker_id: { value: toolId } } }] });
    const { response: w } = await fx.api.worker.Create({
      name: uniqueName("llm"),
      runner_id: { value: Number(llm.runner.id.value) },
      runner_settings: llm.encodeSettings({ genai: { model: "gpt-double", base_url: `${dbl.url}/v1` } }),
      response_type: "DIRECT",
      retry_policy: { type: "NONE" },
    });
    const chat = async (functionSetName: string) => {
      const args = {
        messages: [{ role: "USER", content: { text: `call ${toolName} with {"command":"echo","args":["from-set"]}` } }],
        function_options: { use_function_calling: true, function_set_name: functionSetName, is_auto_calling: true },
      };
      const { response } = await fx.api.job.Enqueue({ worker_id: { value: w.id.value }, using: "chat", args: llm.encodeArgs(args, "chat") }, { timeoutMs: 30_000 });
      return response.result!.data;
    };
    const before = dbl.seen("/v1/chat/completions").length;
    const ok = await chat(setName);
    expect(ok.status, Buffer.from(ok.output?.items ?? []).toString()).toBe("SUCCESS");
    const out = llm.decodeResult(ok.output!.items, "chat");
    expect(out.tool_execution_results[0]).toMatchObject({ fn_name: toolName, success: true });
    expect(JSON.parse(out.tool_execution_results[0].result).stdout).toBe("from-set\n");
    const offered = dbl.seen("/v1/chat/completions")[before].body.tools.map((t: { function: { name: string } }) => t.function.name);
    expect(offered).toEqual([toolName]);

    const bad = await chat("no-such-set");
    expect(bad.status).toBe("FATAL_ERROR");
    expect(Buffer.from(bad.output!.items).toString()).toContain("no-such-set");
  });
});
