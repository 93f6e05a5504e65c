// LLM runner through gRPC, against a protocol double of an LLM server (test/helpers/openai_double.ts):
// no model weights can run on these machines, so a local HTTP server speaks the OpenAI and Ollama APIs
// with scripted answers. The tool of the auto-calling round is a real COMMAND worker.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status, collectSettled, jobResultFromTrailers, type JobResultData } from "../helpers/client.js";
import { createCommandWorker, expectAlive, uniqueName, useServer } from "../helpers/fixture.js";
import { startLlmDouble, type LlmDouble } from "../helpers/openai_double.js";
import { servedCodec, type ServedCodec } from "../helpers/served_protos.js";

const KEY = "e2e-llm-key";
const fx = useServer({ env: { LLM_API_KEY: KEY } });
let dbl: LlmDouble;
let llm: ServedCodec;

beforeAll(async () => {
  dbl = await startLlmDouble({ apiKey: KEY });
  llm = await servedCodec(fx.api, "LLM");
});
afterAll(async () => {
  await dbl?.close();
});

async function createLlmWorker(settings: Record<string, unknown>): Promise<string> {
  const { response } = await fx.api.worker.Create({
    name: uniqueName("llm"),
    runner_id: { value: Number(llm.runner.id.value) },
    runner_settings: llm.encodeSettings(settings),
    response_type: "DIRECT",
    retry_policy: { type: "NONE" },
  });
  return response.id.value;
}

const genai = () => ({ genai: { model: "gpt-double", base_url: `${dbl.url}/v1`, system_prompt: "be helpful" } });
const ollama = () => ({ ollama: { model: "llama-double", base_url: dbl.url } });
const userMessage = (text: string) => ({ role: "USER", content: { text } });

async function enqueue(workerId: string, using: string, args: Record<string, unknown>): Promise<JobResultData> {
  const { response } = await fx.api.job.Enqueue(
    { worker_id: { value: workerId }, using, args: llm.encodeArgs(args, using) },
    { timeoutMs: 30_000 },
  );
  return response.result!.data;
}

describe("LLM", () => {
  it("serves its methods: chat and completion stream, embedding does not", () => {
    const schemas = llm.runner.data.method_proto_map!.schemas;
    expect(Object.keys(schemas).sort()).toEqual(["chat", "completion", "embedding"]);
    expect(schemas.chat.output_type).toBe("BOTH");
    expect(schemas.embedding.output_type).toBe("NON_STREAMING");
    expect(llm.runner.data.runner_settings_proto).toContain("message LLMRunnerSettings");
  });

  it("chat (genai): DIRECT answer with usage; the key comes from LLM_API_KEY", async () => {
    const workerId = await createLlmWorker(genai());
    const before = dbl.seen("/v1/chat/completions").length;
    const r = await enqueue(workerId, "chat", { messages: [userMessage("hello e2e")], options: { max_tokens: 12 } });
    expect(r.status).toBe("SUCCESS");
    const out = llm.decodeResult(r.output!.items, "chat");
    expect(out.content.text).toBe("echo: hello e2e");
    expect(out.done).toBe(true);
    expect(out.usage).toMatchObject({ model: "gpt-double", completion_tokens: 3 });
    const sent = dbl.seen("/v1/chat/completions")[before];
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(sent.body).toMatchObject({ model: "gpt-double", max_tokens: 12, messages: [{ role: "system", content: "be helpful" }, { role: "user", content: "hello e2e" }] });
  });

  it("completion and embedding (ollama)", async () => {
    const workerId = await createLlmWorker(ollama());
    const c = await enqueue(workerId, "completion", { prompt: "finish this" });
    expect(c.status).toBe("SUCCESS");
    const comp = llm.decodeResult(c.output!.items, "completion");
    expect(comp.content.text).toBe("echo: finish this");
    expect(comp.context.ollama_context.data.length).toBeGreaterThan(0);

    const e = await enqueue(workerId, "embedding", { inputs: [{ text: "one" }, { text: "two words" }], options: { dimensions: 5 } });
    expect(e.status).toBe("SUCCESS");
    const emb = llm.decodeResult(e.output!.items, "embedding");
    expect(emb.embeddings.map((x: { input_index: number; dimensions: number }) => [x.input_index, x.dimensions])).toEqual([
      [0, 5],
      [1, 5],
    ]);
  });

  it("chat streaming via EnqueueForStream: LLMChatResult deltas, done=true with usage on the last, then end", async () => {
    const workerId = await createLlmWorker(ollama());
    const out = await collectSettled(
      fx.api.job.EnqueueForStream({ worker_id: { value: workerId }, using: "chat", args: llm.encodeArgs({ messages: [userMessage("stream me please")] }, "chat") }),
      20_000,
    );
    expect(out.error, `stream error: ${out.error?.details}`).toBeNull();
    expect(out.status?.code).toBe(Status.OK);
    expect(out.items.at(-1)?.item).toBe("end");
    const deltas = out.items.slice(0, -1).map((i) => llm.decodeResult(i.data!, "chat"));
    expect(deltas.length).toBeGreaterThanOrEqual(4);
    expect(deltas.map((d) => d.content?.text ?? "").join("")).toBe("echo: stream me please");
    expect(deltas.at(-1)).toMatchObject({ done: true, usage: { model: "llama-double", prompt_tokens: 3 } });
    for (const d of deltas.slice(0, -1)) expect(d.done).toBe(false);
  });

  it("auto-calling: the model calls a COMMAND worker as a tool, gets its result and answers", async () => {
    const toolName = uniqueName("echo_tool");
    const toolWorker = await createCommandWorker(fx.api, { name: toolName, description: "echoes its args" });
    expect(Number(toolWorker)).toBeGreaterThan(0);
    const workerId = await createLlmWorker(genai());
    const before = dbl.seen("/v1/chat/completions").length;
    const r = await enqueue(workerId, "chat", {
      messages: [userMessage(`call ${toolName} with {"command":"echo","args":["hello-from-tool"]}`)],
      function_options: { use_function_calling: true, use_workers_as_function: true, is_auto_calling: true },
    });
    expect(r.status, Buffer.from(r.output?.items ?? []).toString()).toBe("SUCCESS");
    const out = llm.decodeResult(r.output!.items, "chat");
    expect(out.content.text).toMatch(/^tool said: /);
    expect(out.content.text).toContain("hello-from-tool");
    expect(out.tool_execution_results).toHaveLength(1);
    const t = out.tool_execution_results[0];
    expect(t).toMatchObject({ fn_name: toolName, success: true });
    expect(JSON.parse(t.result)).toMatchObject({ exit_code: 0, stdout: "hello-from-tool\n" });
    expect(Number(t.job_id)).toBeGreaterThan(0);
    // the tool was offered with a JSON Schema derived from CommandArgs
    const first = dbl.seen("/v1/chat/completions")[before];
    const offered = first.body.tools.find((x: { function: { name: string } }) => x.function.name === toolName);
    expect(offered.function.description).toBe("echoes its args");
    expect(offered.function.parameters.properties.command).toEqual({ type: "string" });
    expect(offered.function.parameters.properties.args).toEqual({ type: "array", items: { type: "string" } });
  });

  it("auto-calling with a runner as the tool: a temporary worker runs it and is deleted afterwards", async () => {
    const workerId = await createLlmWorker(genai());
    const count = async () => Number((await fx.api.worker.CountBy({})).response.total);
    const before = await count();
    const r = await enqueue(workerId, "chat", {
      messages: [userMessage('call COMMAND with {"command":"echo","args":["via-runner"]}')],
      function_options: { use_function_calling: true, use_runners_as_function: true, is_auto_calling: true },
    });
    expect(r.status, Buffer.from(r.output?.items ?? []).toString()).toBe("SUCCESS");
    const out = llm.decodeResult(r.output!.items, "chat");
    expect(out.tool_execution_results[0]).toMatchObject({ fn_name: "COMMAND", success: true });
    expect(out.content.text).toContain("via-runner");
    expect(await count()).toBe(before);
  });

  it("auto-calling: a tool job that fails is reported with success=false and the model sees the error", async () => {
    const toolName = uniqueName("bad_tool");
    await createCommandWorker(fx.api, { name: toolName });
    const workerId = await createLlmWorker(genai());
    const r = await enqueue(workerId, "chat", {
      messages: [userMessage(`call ${toolName} with {"command":"/nonexistent/command-xyz"}`)],
      function_options: { use_function_calling: true, use_workers_as_function: true, is_auto_calling: true },
    });
    expect(r.status).toBe("SUCCESS");
    const out = llm.decodeResult(r.output!.items, "chat");
    expect(out.tool_execution_results[0]).toMatchObject({ fn_name: toolName, success: false });
    expect(out.tool_execution_results[0].error).toMatch(/nonexistent/);
    expect(out.content.text).toMatch(/^tool said: error: /);
  });

  it("failures: unreachable base URL → MAX_RETRY (ERROR_AND_RETRY, no retry); no settings → FATAL_ERROR; streaming failure carries the result", async () => {
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const down = await createLlmWorker({ genai: { model: "m", base_url: `http://127.0.0.1:${port}/v1` } });
    const r = await enqueue(down, "chat", { messages: [userMessage("anyone?")] });
    expect(r.status).toBe("MAX_RETRY");
    expect(Buffer.from(r.output!.items).toString()).toMatch(new RegExp(`LLM request to http://127.0.0.1:${port} failed: ECONNREFUSED`));

    const empty = await createLlmWorker({});
    const f = await enqueue(empty, "chat", { messages: [userMessage("x")] });
    expect(f.status).toBe("FATAL_ERROR");
    expect(Buffer.from(f.output!.items).toString()).toMatch(/needs `ollama` or `genai` settings/);

    const ok = await createLlmWorker(genai());
    const bad = await enqueue(ok, "chat", { messages: [] });
    expect(bad.status).toBe("FATAL_ERROR");
    expect(Buffer.from(bad.output!.items).toString()).toMatch(/messages is empty/);

    const st = await collectSettled(
      fx.api.job.EnqueueForStream({ worker_id: { value: ok }, using: "chat", args: llm.encodeArgs({ messages: [userMessage("fail 400")] }, "chat") }),
      20_000,
    );
    expect(st.error?.code).toBe(Status.FAILED_PRECONDITION);
    expect(jobResultFromTrailers(st.error!.metadata)?.data.status).toBe("FATAL_ERROR");
    await expectAlive(fx);
  });
});
