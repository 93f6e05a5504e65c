// LLM runner against a protocol double (test/helpers/openai_double.ts): no model weights can run on these
// machines, so a local node:http server speaks the OpenAI and Ollama HTTP APIs with scripted answers and
// records what the runner sent.
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StreamingOutputType } from "../../worker-container/src/gen/jobworkerp/data/runner_pb.js";
import { LLMChatArgs_ChatRole as Role, LLMChatArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/llm/chat_args_pb.js";
import { LLMChatResultSchema, type LLMChatResult } from "../../worker-container/src/gen/jobworkerp/runner/llm/chat_result_pb.js";
import { LLMCompletionArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/llm/completion_args_pb.js";
import { LLMCompletionResultSchema } from "../../worker-container/src/gen/jobworkerp/runner/llm/completion_result_pb.js";
import { LLMEmbeddingArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/llm/embedding_args_pb.js";
import { LLMEmbeddingResultSchema } from "../../worker-container/src/gen/jobworkerp/runner/llm/embedding_result_pb.js";
import { LLMRunnerSettingsSchema } from "../../worker-container/src/gen/jobworkerp/runner/llm/runner_pb.js";
import { chunkText } from "../../worker-container/src/runners/llm/embedding.js";
import { collectChatStream, collectCompletionStream, llmRunner } from "../../worker-container/src/runners/llm/index.js";
import { splitThink, ThinkSplitter } from "../../worker-container/src/runners/llm/reasoning.js";
import type { ToolHost } from "../../worker-container/src/runners/llm/tools.js";
import type { RunContext, RunnerInstance } from "../../worker-container/src/runners/runner.js";
import { startLlmDouble, vectorOf, type LlmDouble } from "../helpers/openai_double.js";
import { expectRunnerError, rejection } from "../helpers/runner_errors.js";

const KEY = "sk-test-key";
let dbl: LlmDouble;
beforeAll(async () => {
  dbl = await startLlmDouble({ apiKey: KEY });
});
afterAll(async () => {
  await dbl.close();
});

type Settings = MessageInitShape<typeof LLMRunnerSettingsSchema>;
type ChatArgs = MessageInitShape<typeof LLMChatArgsSchema>;

const ctx = (using: string, signal: AbortSignal = new AbortController().signal): RunContext => ({ signal, using, jobId: 1n, metadata: {} });
const settings = (s: Settings) => toBinary(LLMRunnerSettingsSchema, create(LLMRunnerSettingsSchema, s));
const genai = (extra: Partial<{ model: string; systemPrompt: string; baseUrl: string }> = {}): Settings => ({
  settings: { case: "genai", value: { model: "gpt-double", baseUrl: `${dbl.url}/v1`, ...extra } },
});
const ollama = (extra: Partial<{ model: string; systemPrompt: string; baseUrl: string; pullModel: boolean }> = {}): Settings => ({
  settings: { case: "ollama", value: { model: "llama-double", baseUrl: dbl.url, ...extra } },
});
const instance = (s: Settings, toolHost?: ToolHost, apiKey: string | undefined = KEY) => llmRunner(toolHost, { apiKey }).create(settings(s));

const user = (text: string) => ({ role: Role.USER, content: { content: { case: "text" as const, value: text } } });
const chatArgs = (a: ChatArgs) => toBinary(LLMChatArgsSchema, create(LLMChatArgsSchema, a));

async function chat(inst: RunnerInstance, a: ChatArgs): Promise<LLMChatResult> {
  return fromBinary(LLMChatResultSchema, await inst.run(chatArgs(a), ctx("chat")));
}
async function chatStream(inst: RunnerInstance, a: ChatArgs): Promise<LLMChatResult[]> {
  const out: LLMChatResult[] = [];
  for await (const b of inst.runStream!(chatArgs(a), ctx("chat"))) out.push(fromBinary(LLMChatResultSchema, b));
  return out;
}
const textOf = (r: LLMChatResult) => (r.content?.content.case === "text" ? r.content.content.value : "");
const last = <T>(xs: T[]) => xs[xs.length - 1];

describe("LLM definition and settings", () => {
  it("describes the runner: id 32768, methods chat/completion (BOTH) and embedding (NON_STREAMING), served protos", () => {
    const def = llmRunner();
    expect(def.id).toBe(32768n);
    expect(def.name).toBe("LLM");
    expect(Object.keys(def.methods).sort()).toEqual(["chat", "completion", "embedding"]);
    expect(def.methods.chat.outputType).toBe(StreamingOutputType.BOTH);
    expect(def.methods.completion.outputType).toBe(StreamingOutputType.BOTH);
    expect(def.methods.embedding.outputType).toBe(StreamingOutputType.NON_STREAMING);
    expect(def.settingsProto).toContain("message LLMRunnerSettings");
    expect(def.settingsProto).toContain("package jobworkerp.runner.llm;");
    expect(def.methods.chat.argsProto).toContain("message LLMChatArgs");
    expect(def.methods.chat.resultProto).toContain("message LLMChatResult");
    for (const m of Object.values(def.methods)) expect(m.argsProto + m.resultProto).not.toMatch(/^import /m);
  });

  it("rejects bad settings as FATAL_ERROR", async () => {
    const def = llmRunner(undefined, { apiKey: KEY });
    await expectRunnerError(def.create(settings({})), "FATAL_ERROR", /ollama.*genai/);
    await expectRunnerError(def.create(settings(genai({ model: "" }))), "FATAL_ERROR", /model/);
    await expectRunnerError(def.create(settings(ollama({ model: "" }))), "FATAL_ERROR", /model/);
    await expectRunnerError(def.create(settings(genai({ baseUrl: "not a url" }))), "FATAL_ERROR", /base_url/);
    await expectRunnerError(def.create(settings(ollama({ baseUrl: "ftp://x/" }))), "FATAL_ERROR", /http/);
    await expectRunnerError(def.create(new Uint8Array([0xff, 0xff])), "FATAL_ERROR", /LLMRunnerSettings/);
    // api.openai.com without a key cannot work: said at once
    await expectRunnerError(llmRunner().create(settings(genai({ baseUrl: "" }))), "FATAL_ERROR", /LLM_API_KEY|OPENAI_API_KEY/);
  });
});

describe("LLM genai (OpenAI-compatible)", () => {
  it("chat: sends model, system prompt, options, bearer key; answers with text and usage", async () => {
    const inst = await instance(genai({ systemPrompt: "be brief" }));
    const before = dbl.seen("/v1/chat/completions").length;
    const r = await chat(inst, {
      messages: [user("hello there")],
      options: { maxTokens: 50, temperature: 0.5, topP: 0.9, seed: 7, repeatPenalty: 1.1 },
    });
    expect(textOf(r)).toBe("echo: hello there");
    expect(r.done).toBe(true);
    expect(r.usage?.model).toBe("gpt-double");
    expect(r.usage?.promptTokens).toBe(4); // "be brief" + "hello there"
    expect(r.usage?.completionTokens).toBe(3);
    const sent = dbl.seen("/v1/chat/completions")[before];
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(sent.body).toMatchObject({
      model: "gpt-double",
      stream: false,
      max_tokens: 50,
      temperature: 0.5,
      seed: 7,
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hello there" },
      ],
    });
    expect(sent.body.top_p).toBeCloseTo(0.9);
    expect(sent.body).not.toHaveProperty("repeat_penalty"); // no OpenAI counterpart
    expect(sent.body).not.toHaveProperty("tools");
  });

  it("chat: args.model overrides the worker's; json_schema becomes response_format; a SYSTEM message replaces the default prompt", async () => {
    const inst = await instance(genai({ systemPrompt: "default" }));
    const schema = { type: "object", properties: { a: { type: "string" } } };
    await chat(inst, {
      model: "other-model",
      jsonSchema: JSON.stringify(schema),
      messages: [{ role: Role.SYSTEM, content: { content: { case: "text", value: "mine" } } }, user("x")],
    });
    const sent = last(dbl.seen("/v1/chat/completions"));
    expect(sent.body.model).toBe("other-model");
    expect(sent.body.response_format).toEqual({ type: "json_schema", json_schema: { name: "response", schema } });
    expect(sent.body.messages).toEqual([
      { role: "system", content: "mine" },
      { role: "user", content: "x" },
    ]);
  });

  it("chat streaming: several text deltas, then done=true with usage; stream_options asks for usage", async () => {
    const inst = await instance(genai());
    const events = await chatStream(inst, { messages: [user("one two three four")] });
    const deltas = events.filter((e) => textOf(e) !== "");
    expect(deltas.length).toBeGreaterThanOrEqual(4);
    expect(deltas.map(textOf).join("")).toBe("echo: one two three four");
    for (const e of events.slice(0, -1)) expect(e.done).toBe(false);
    expect(last(events).done).toBe(true);
    expect(last(events).usage).toMatchObject({ model: "gpt-double", promptTokens: 4, completionTokens: 5 });
    const sent = last(dbl.seen("/v1/chat/completions"));
    expect(sent.body.stream).toBe(true);
    expect(sent.body.stream_options).toEqual({ include_usage: true });
  });

  it("extract_reasoning_content: the reasoning field and <think> text become reasoning_content (both modes)", async () => {
    const inst = await instance(genai());
    const r = await chat(inst, { messages: [user("reason: sky")], options: { extractReasoningContent: true } });
    expect(textOf(r)).toBe("answer: sky");
    expect(r.reasoningContent).toContain("field reasoning about sky");
    expect(r.reasoningContent).toContain("thinking about sky");
    const events = await chatStream(inst, { messages: [user("reason: sea")], options: { extractReasoningContent: true } });
    expect(events.map(textOf).join("")).toBe("answer: sea");
    expect(events.map((e) => e.reasoningContent ?? "").join("")).toContain("thinking about sea");
    // without the option the text is the model's, tags and all
    const plain = await chat(inst, { messages: [user("reason: sun")] });
    expect(textOf(plain)).toBe("<think>thinking about sun</think>answer: sun");
    expect(plain.reasoningContent).toBeUndefined();
  });

  it("images are sent as image_url parts (data URL from base64)", async () => {
    const inst = await instance(genai());
    await chat(inst, {
      messages: [{ role: Role.USER, content: { content: { case: "image", value: { contentType: "image/png", source: { base64: "AAAA" } } } } }, user("what is it")],
    });
    const sent = last(dbl.seen("/v1/chat/completions"));
    expect(sent.body.messages[0]).toEqual({ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] });
  });

  it("completion: system prompt + prompt as a chat; streaming deltas end with done and usage", async () => {
    const inst = await instance(genai({ systemPrompt: "sys" }));
    const a = toBinary(LLMCompletionArgsSchema, create(LLMCompletionArgsSchema, { prompt: "complete me", options: { maxTokens: 9 } }));
    const r = fromBinary(LLMCompletionResultSchema, await inst.run(a, ctx("completion")));
    expect(r.content?.content).toEqual({ case: "text", value: "echo: complete me" });
    expect(r.done).toBe(true);
    expect(r.usage?.completionTokens).toBe(3);
    expect(last(dbl.seen("/v1/chat/completions")).body).toMatchObject({
      max_tokens: 9,
      messages: [
        { role: "system", content: "sys" },
        { role: "user", content: "complete me" },
      ],
    });
    const chunks = [];
    for await (const b of inst.runStream!(a, ctx("completion"))) chunks.push(fromBinary(LLMCompletionResultSchema, b));
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.map((c) => (c.content?.content.case === "text" ? c.content.content.value : "")).join("")).toBe("echo: complete me");
    expect(last(chunks).done).toBe(true);
    expect(last(chunks).usage?.promptTokens).toBe(3);
  });

  it("embedding: one vector per input with index and dimensions; dimensions option sent", async () => {
    const inst = await instance(genai());
    const a = toBinary(
      LLMEmbeddingArgsSchema,
      create(LLMEmbeddingArgsSchema, {
        model: "embed-double",
        inputs: [{ content: { case: "text", value: "alpha" } }, { content: { case: "text", value: "beta gamma" } }],
        options: { dimensions: 4 },
      }),
    );
    const r = fromBinary(LLMEmbeddingResultSchema, await inst.run(a, ctx("embedding")));
    expect(r.embeddings.map((e) => [e.inputIndex, e.dimensions, e.content, e.beginPosition, e.endPosition])).toEqual([
      [0, 4, "alpha", 0, 5],
      [1, 4, "beta gamma", 0, 10],
    ]);
    expect(r.embeddings[1].vector.map((x) => Math.round(x * 1000) / 1000)).toEqual(vectorOf("beta gamma", 4));
    expect(r.usage).toMatchObject({ model: "embed-double", promptTokens: 3 });
    expect(last(dbl.seen("/v1/embeddings")).body).toEqual({ model: "embed-double", input: ["alpha", "beta gamma"], encoding_format: "float", dimensions: 4 });
  });

  it("embedding with chunking: long texts are split, positions point into the input", async () => {
    const inst = await instance({ settings: { case: "genai", value: { model: "gpt-double", baseUrl: `${dbl.url}/v1` } }, embeddingChunking: { maxChunkTokens: 2 } });
    const text = "aaaa bbbb cccc dddd eeee";
    const a = toBinary(LLMEmbeddingArgsSchema, create(LLMEmbeddingArgsSchema, { inputs: [{ content: { case: "text", value: text } }] }));
    const r = fromBinary(LLMEmbeddingResultSchema, await inst.run(a, ctx("embedding")));
    expect(r.embeddings.length).toBeGreaterThan(1);
    for (const e of r.embeddings) {
      expect(e.inputIndex).toBe(0);
      expect(text.slice(e.beginPosition, e.endPosition)).toBe(e.content);
    }
    expect(r.embeddings.map((e) => e.content).join("")).toBe(text);
  });
});

describe("LLM ollama", () => {
  it("chat: /api/chat with options mapped to Ollama names and json_schema as format; usage with times", async () => {
    const inst = await instance(ollama({ systemPrompt: "sys" }));
    const schema = { type: "object" };
    const r = await chat(inst, {
      messages: [user("hi ollama")],
      options: { maxTokens: 20, temperature: 0.25, repeatPenalty: 1.5, repeatLastN: 64, seed: 3 },
      jsonSchema: JSON.stringify(schema),
    });
    expect(textOf(r)).toBe("echo: hi ollama");
    expect(r.usage).toMatchObject({ model: "llama-double", promptTokens: 3, completionTokens: 3 });
    expect(r.usage?.totalPromptTimeSec).toBeCloseTo(0.002);
    expect(r.usage?.totalCompletionTimeSec).toBeCloseTo(0.005);
    const sent = last(dbl.seen("/api/chat"));
    expect(sent.headers.authorization).toBeUndefined();
    expect(sent.body).toEqual({
      model: "llama-double",
      stream: false,
      messages: [
        { role: "system", content: "sys" },
        { role: "user", content: "hi ollama" },
      ],
      options: { num_predict: 20, temperature: 0.25, repeat_penalty: 1.5, repeat_last_n: 64, seed: 3 },
      format: schema,
    });
  });

  it("chat streaming over NDJSON", async () => {
    const inst = await instance(ollama());
    const events = await chatStream(inst, { messages: [user("a b c")] });
    expect(events.filter((e) => textOf(e)).length).toBeGreaterThanOrEqual(3);
    expect(events.map(textOf).join("")).toBe("echo: a b c");
    expect(last(events)).toMatchObject({ done: true, usage: { promptTokens: 3 } });
  });

  it("completion: /api/generate; the returned context continues the conversation; pull_model pulls once", async () => {
    const inst = await instance(ollama({ pullModel: true, model: "pull-me" }));
    const run = async (a: MessageInitShape<typeof LLMCompletionArgsSchema>) =>
      fromBinary(LLMCompletionResultSchema, await inst.run(toBinary(LLMCompletionArgsSchema, create(LLMCompletionArgsSchema, a)), ctx("completion")));
    const r1 = await run({ prompt: "first", systemPrompt: "s1" });
    expect(r1.content?.content.value).toBe("echo: first");
    expect(r1.context?.context.case).toBe("ollamaContext");
    const data = r1.context?.context.case === "ollamaContext" ? r1.context.context.value.data : [];
    expect(data.length).toBeGreaterThan(0);
    const r2 = await run({ prompt: "second", context: { context: { case: "ollamaContext", value: { data } } } });
    expect(r2.content?.content.value).toBe(`echo: second (context ${data.length})`);
    const gens = dbl.seen("/api/generate").slice(-2);
    expect(gens[0].body).toMatchObject({ model: "pull-me", prompt: "first", system: "s1", stream: false });
    expect(gens[1].body.context).toEqual(data);
    expect(dbl.seen("/api/pull").filter((p) => p.body.model === "pull-me")).toHaveLength(1);
  });

  it("embedding: /api/embed with truncate mapped to a boolean", async () => {
    const inst = await instance(ollama());
    const a = toBinary(
      LLMEmbeddingArgsSchema,
      create(LLMEmbeddingArgsSchema, { inputs: [{ content: { case: "text", value: "x y" } }], options: { truncate: "NONE" } }),
    );
    const r = fromBinary(LLMEmbeddingResultSchema, await inst.run(a, ctx("embedding")));
    expect(r.embeddings).toHaveLength(1);
    expect(r.embeddings[0].dimensions).toBe(8);
    expect(last(dbl.seen("/api/embed")).body).toEqual({ model: "llama-double", input: ["x y"], truncate: false });
  });
});

describe("LLM tool calling", () => {
  const weatherTool = JSON.stringify([
    { type: "function", function: { name: "get_weather", description: "weather of a city", parameters: { type: "object", properties: { city: { type: "string" } } } } },
  ]);

  for (const [label, s] of [
    ["genai", () => genai()],
    ["ollama", () => ollama()],
  ] as const) {
    it(`${label}: a client tool call comes back pending; the client's tool_results continue the conversation`, async () => {
      const inst = await instance(s());
      const ask = user('call get_weather with {"city":"Kyoto"}');
      for (const stream of [false, true]) {
        const r = stream ? last(await chatStream(inst, { messages: [ask], functionOptions: { clientToolsJson: weatherTool } })) : await chat(inst, { messages: [ask], functionOptions: { clientToolsJson: weatherTool } });
        expect(r.done).toBe(true);
        expect(r.requiresToolExecution).toBe(true);
        expect(r.pendingToolCalls?.calls).toHaveLength(1);
        const call = r.pendingToolCalls!.calls[0];
        expect(call.fnName).toBe("get_weather");
        expect(JSON.parse(call.fnArguments)).toEqual({ city: "Kyoto" });
        expect(call.callId).not.toBe("");
        expect(r.content?.content.case).toBe("toolCalls");
      }
      const sentTools = label === "genai" ? last(dbl.seen("/v1/chat/completions")).body.tools : last(dbl.seen("/api/chat")).body.tools;
      expect(sentTools).toEqual([{ type: "function", function: { name: "get_weather", description: "weather of a city", parameters: { type: "object", properties: { city: { type: "string" } } } } }]);

      const first = await chat(inst, { messages: [ask], functionOptions: { clientToolsJson: weatherTool } });
      const pending = first.pendingToolCalls!.calls[0];
      const call = { callId: pending.callId, fnName: pending.fnName, fnArguments: pending.fnArguments };
      const r2 = await chat(inst, {
        functionOptions: { clientToolsJson: weatherTool },
        messages: [
          ask,
          { role: Role.ASSISTANT, content: { content: { case: "toolCalls", value: { calls: [call] } } } },
          { role: Role.TOOL, content: { content: { case: "toolResults", value: { results: [{ callId: call.callId, fnName: call.fnName, content: "sunny" }] } } } },
        ],
      });
      expect(textOf(r2)).toBe("tool said: sunny");
      expect(r2.requiresToolExecution).toBeUndefined();
      const msgs = label === "genai" ? last(dbl.seen("/v1/chat/completions")).body.messages : last(dbl.seen("/api/chat")).body.messages;
      if (label === "genai") {
        expect(msgs[1]).toEqual({ role: "assistant", content: null, tool_calls: [{ id: call.callId, type: "function", function: { name: "get_weather", arguments: call.fnArguments } }] });
        expect(msgs[2]).toEqual({ role: "tool", tool_call_id: call.callId, content: "sunny" });
      } else {
        expect(msgs[1]).toEqual({ role: "assistant", content: "", tool_calls: [{ function: { name: "get_weather", arguments: { city: "Kyoto" } } }] });
        expect(msgs[2]).toEqual({ role: "tool", content: "sunny", tool_name: "get_weather" });
      }
    });
  }

  /** A ToolHost of this test: one tool that adds numbers (the System-backed host is tested end to end). */
  const adder = (): ToolHost & { calls: string[] } => {
    const calls: string[] = [];
    return {
      calls,
      async list() {
        return [{ name: "add", description: "adds a and b", parameters: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } } }];
      },
      async call(name, argsJson, _signal, onStarted) {
        calls.push(`${name}:${argsJson}`);
        const a = JSON.parse(argsJson) as { a: number; b: number };
        if (a.a < 0) throw new Error("negative numbers are not allowed");
        onStarted?.(42n);
        return { result: JSON.stringify({ sum: a.a + a.b }), jobId: 42n };
      },
    };
  };

  it("auto-calling: the server tool runs, its result goes back to the model, the answer and the executions are reported", async () => {
    const host = adder();
    const inst = await instance(genai(), host);
    const fo = { useFunctionCalling: true, useRunnersAsFunction: true, isAutoCalling: true, toolChoice: "auto", parallelToolCalls: false };
    const r = await chat(inst, { messages: [user('call add with {"a":2,"b":3}')], functionOptions: fo });
    expect(textOf(r)).toBe('tool said: {"sum":5}');
    expect(r.done).toBe(true);
    expect(r.requiresToolExecution).toBeUndefined();
    expect(r.toolExecutionResults).toHaveLength(1);
    expect(r.toolExecutionResults[0]).toMatchObject({ fnName: "add", result: '{"sum":5}', success: true, jobId: 42n });
    expect(host.calls).toEqual(['add:{"a":2,"b":3}']);
    const sent = dbl.seen("/v1/chat/completions").slice(-2);
    expect(sent[0].body.tool_choice).toBe("auto");
    expect(sent[0].body.parallel_tool_calls).toBe(false);
    expect(sent[1].body.messages.at(-1)).toMatchObject({ role: "tool", content: '{"sum":5}' });
    // both model calls are counted
    expect(r.usage?.promptTokens).toBeGreaterThan(5);

    // streaming: tool call, started, results, then the answer
    const events = await chatStream(inst, { messages: [user('call add with {"a":1,"b":1}')], functionOptions: fo });
    expect(events.some((e) => e.content?.content.case === "toolCalls")).toBe(true);
    expect(events.find((e) => e.toolExecutionStarted)?.toolExecutionStarted).toMatchObject({ fnName: "add", jobId: 42n });
    expect(events.find((e) => e.toolExecutionResults.length)?.toolExecutionResults[0].result).toBe('{"sum":2}');
    expect(events.map(textOf).join("")).toBe('tool said: {"sum":2}');
    expect(last(events).done).toBe(true);
  });

  it("auto-calling: a failing tool's error is given to the model, and reported with success=false", async () => {
    const inst = await instance(ollama(), adder());
    const r = await chat(inst, {
      messages: [user('call add with {"a":-1,"b":3}')],
      functionOptions: { useFunctionCalling: true, isAutoCalling: true },
    });
    expect(textOf(r)).toBe("tool said: error: negative numbers are not allowed");
    expect(r.toolExecutionResults[0]).toMatchObject({ fnName: "add", success: false, error: "negative numbers are not allowed" });
  });

  it("without is_auto_calling, server tool calls are pending; tool_execution_requests make the server run them", async () => {
    const host = adder();
    const inst = await instance(genai(), host);
    const fo = { useFunctionCalling: true, useWorkersAsFunction: true };
    const ask = user('call add with {"a":4,"b":5}');
    const r = await chat(inst, { messages: [ask], functionOptions: fo });
    expect(r.requiresToolExecution).toBe(true);
    expect(host.calls).toEqual([]);
    const pending = r.pendingToolCalls!.calls[0];
    const call = { callId: pending.callId, fnName: pending.fnName, fnArguments: pending.fnArguments };
    const r2 = await chat(inst, {
      functionOptions: fo,
      messages: [
        ask,
        { role: Role.ASSISTANT, content: { content: { case: "toolCalls", value: { calls: [call] } } } },
        { role: Role.TOOL, content: { content: { case: "toolExecutionRequests", value: { requests: [{ callId: call.callId, fnName: "add", fnArguments: call.fnArguments }] } } } },
      ],
    });
    expect(host.calls).toEqual(['add:{"a":4,"b":5}']);
    expect(textOf(r2)).toBe('tool said: {"sum":9}');
    expect(r2.toolExecutionResults[0]).toMatchObject({ callId: call.callId, success: true });
  });
});

describe("LLM failures", () => {
  it("unreachable base URL → ERROR_AND_RETRY naming the endpoint", async () => {
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const inst = await instance(genai({ baseUrl: `http://127.0.0.1:${port}/v1` }));
    await expectRunnerError(inst.run(chatArgs({ messages: [user("x")] }), ctx("chat")), "ERROR_AND_RETRY", new RegExp(`127.0.0.1:${port}.*ECONNREFUSED`));
    const o = await instance(ollama({ baseUrl: `http://127.0.0.1:${port}` }));
    await expectRunnerError(o.run(chatArgs({ messages: [user("x")] }), ctx("chat")), "ERROR_AND_RETRY", /ECONNREFUSED/);
  });

  it("API errors: 5xx/429 are retried, 4xx are fatal, a wrong key is fatal with the API's message", async () => {
    const inst = await instance(genai());
    await expectRunnerError(inst.run(chatArgs({ messages: [user("fail 503")] }), ctx("chat")), "ERROR_AND_RETRY", /503.*scripted failure/);
    await expectRunnerError(inst.run(chatArgs({ messages: [user("fail 429")] }), ctx("chat")), "ERROR_AND_RETRY", /429/);
    await expectRunnerError(inst.run(chatArgs({ messages: [user("fail 400")] }), ctx("chat")), "FATAL_ERROR", /400/);
    const badKey = await instance(genai(), undefined, "wrong");
    await expectRunnerError(badKey.run(chatArgs({ messages: [user("x")] }), ctx("chat")), "FATAL_ERROR", /401.*Incorrect API key/);
    const o = await instance(ollama());
    await expectRunnerError(o.run(chatArgs({ messages: [user("fail 500")] }), ctx("chat")), "ERROR_AND_RETRY", /500/);
  });

  it("bad args → FATAL_ERROR with a clear message", async () => {
    const inst = await instance(genai());
    await expectRunnerError(inst.run(chatArgs({ messages: [] }), ctx("chat")), "FATAL_ERROR", /messages is empty/);
    await expectRunnerError(inst.run(chatArgs({ messages: [{ role: Role.USER }] }), ctx("chat")), "FATAL_ERROR", /no content/);
    await expectRunnerError(inst.run(chatArgs({ messages: [{ role: Role.UNSPECIFIED, content: { content: { case: "text", value: "x" } } }] }), ctx("chat")), "FATAL_ERROR", /role/);
    await expectRunnerError(inst.run(chatArgs({ messages: [user("x")], jsonSchema: "{nope" }), ctx("chat")), "FATAL_ERROR", /json_schema/);
    await expectRunnerError(inst.run(chatArgs({ messages: [user("x")], functionOptions: { clientToolsJson: "{}" } }), ctx("chat")), "FATAL_ERROR", /client_tools_json/);
    await expectRunnerError(inst.run(chatArgs({ messages: [user("x")], functionOptions: { useFunctionCalling: true } }), ctx("chat")), "FATAL_ERROR", /tools are not available/);
    await expectRunnerError(inst.run(new Uint8Array([0xff]), ctx("chat")), "FATAL_ERROR", /LLMChatArgs/);
    await expectRunnerError(inst.run(chatArgs({ messages: [user("x")] }), ctx("nope")), "FATAL_ERROR", /no method 'nope'/);
    const comp = toBinary(LLMCompletionArgsSchema, create(LLMCompletionArgsSchema, { prompt: "" }));
    await expectRunnerError(inst.run(comp, ctx("completion")), "FATAL_ERROR", /prompt is empty/);
    const emb = toBinary(LLMEmbeddingArgsSchema, create(LLMEmbeddingArgsSchema, { inputs: [{ content: { case: "image", value: {} } }] }));
    await expectRunnerError(inst.run(emb, ctx("embedding")), "FATAL_ERROR", /only text/);
  });

  it("a cancelled job stops waiting for the model at once", async () => {
    const inst = await instance(genai());
    const ac = new AbortController();
    const t0 = Date.now();
    const p = inst.run(chatArgs({ messages: [user("slow")] }), ctx("chat", ac.signal));
    setTimeout(() => ac.abort(new Error("job cancelled")), 100);
    const e = await rejection(p);
    expect((e as Error).message).toMatch(/cancelled/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe("LLM helpers", () => {
  it("ThinkSplitter handles tags split across pieces", () => {
    const s = new ThinkSplitter();
    const parts = ["a<th", "ink>r1 ", "r2</thi", "nk>b", "<"].map((p) => s.feed(p));
    const end = s.flush();
    expect(parts.map((p) => p.text).join("") + end.text).toBe("ab<");
    expect(parts.map((p) => p.reasoning).join("") + end.reasoning).toBe("r1 r2");
    expect(splitThink("<think> x </think>\n\ny")).toEqual({ text: "y", reasoning: "x" });
  });

  it("chunkText splits by estimated tokens (chars or words) and merges a small tail", () => {
    expect(chunkText("short", undefined)).toEqual([{ begin: 0, end: 5 }]);
    expect(chunkText("w1 w2 w3 w4 w5", { maxChunkTokens: 2, tokenEstimation: 2 }).length).toBe(3);
    expect(chunkText("w1 w2 w3 w4 w5", { maxChunkTokens: 2, minChunkTokens: 2, tokenEstimation: 2 }).length).toBe(2);
  });
});

describe("LLM collectStream", () => {
  const chat = (e: MessageInitShape<typeof LLMChatResultSchema>) => toBinary(LLMChatResultSchema, create(LLMChatResultSchema, e));
  const completion = (e: MessageInitShape<typeof LLMCompletionResultSchema>) => toBinary(LLMCompletionResultSchema, create(LLMCompletionResultSchema, e));
  const usage = { model: "m", promptTokens: 3, completionTokens: 2 };

  it("chat: joins the text deltas and keeps the done chunk's usage", () => {
    const runner = llmRunner();
    expect(runner.methods.chat.collectStream).toBe(collectChatStream);
    const out = fromBinary(
      LLMChatResultSchema,
      collectChatStream([chat({ content: { content: { case: "text", value: "Hel" } } }), chat({ content: { content: { case: "text", value: "lo" } } }), chat({ done: true, usage })]),
    );
    expect(out.content?.content).toEqual({ case: "text", value: "Hello" });
    expect(out.done).toBe(true);
    expect(out.usage).toMatchObject(usage);
  });

  it("completion: joins the text deltas and keeps the done chunk's usage", () => {
    expect(llmRunner().methods.completion.collectStream).toBe(collectCompletionStream);
    const out = fromBinary(
      LLMCompletionResultSchema,
      collectCompletionStream([completion({ content: { content: { case: "text", value: "a" } } }), completion({ content: { content: { case: "text", value: "b" } } }), completion({ done: true, usage })]),
    );
    expect(out.content?.content).toEqual({ case: "text", value: "ab" });
    expect(out.usage).toMatchObject(usage);
  });
});
