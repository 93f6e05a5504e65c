// OpenAI-compatible HTTP API (`genai` settings): /chat/completions (JSON or SSE) and /embeddings.
// Completion is a chat with a system and a user message: current OpenAI models serve only the chat API.
import { RunnerError } from "../runner.js";
import { post, postJson, sseJson } from "./http.js";
import type { ChatRequest, Delta, EmbedRequest, EmbedResponse, GenerateRequest, LlmClient, Message, ToolCall } from "./provider.js";

export const OPENAI_BASE_URL = "https://api.openai.com/v1";

interface WireToolCall {
  index?: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}
interface WireMessage {
  content?: string | null;
  reasoning_content?: string | null;
  reasoning?: string | null;
  tool_calls?: WireToolCall[];
}
interface WireUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
}
interface ChatResponse {
  model?: string;
  choices?: { message?: WireMessage; delta?: WireMessage; finish_reason?: string | null }[];
  usage?: WireUsage | null;
  error?: { message?: string };
}

function wireMessage(m: Message): Record<string, unknown> {
  if (m.role === "tool") return { role: "tool", tool_call_id: m.toolCallId ?? "", content: m.text ?? "" };
  if (m.image) {
    const url = m.image.url || `data:${m.image.contentType || "image/png"};base64,${m.image.base64 ?? ""}`;
    return { role: m.role, content: [{ type: "image_url", image_url: { url } }] };
  }
  if (m.toolCalls?.length) {
    return {
      role: "assistant",
      content: m.text ?? null,
      tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments || "{}" } })),
    };
  }
  return { role: m.role, content: m.text ?? "" };
}

function toolChoice(choice: string): unknown {
  return choice === "auto" || choice === "none" || choice === "required" ? choice : { type: "function", function: { name: choice } };
}

const usageOf = (u: WireUsage | null | undefined) =>
  u ? { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens } : undefined;

const reasoningOf = (m: WireMessage | undefined) => m?.reasoning_content ?? m?.reasoning ?? undefined;

/** Streamed tool calls arrive as fragments keyed by index: id and name first, arguments in pieces. */
class ToolCallAssembler {
  private calls = new Map<number, ToolCall>();

  add(fragments: WireToolCall[] | undefined) {
    for (const f of fragments ?? []) {
      const i = f.index ?? this.calls.size;
      const c = this.calls.get(i) ?? { id: "", name: "", arguments: "" };
      if (f.id) c.id = f.id;
      if (f.function?.name) c.name += f.function.name;
      if (f.function?.arguments) c.arguments += f.function.arguments;
      this.calls.set(i, c);
    }
  }

  done(): ToolCall[] {
    return [...this.calls.entries()].sort(([a], [b]) => a - b).map(([i, c]) => ({ ...c, id: c.id || `call_${i}` }));
  }
}

export class OpenAiClient implements LlmClient {
  constructor(
    private readonly baseUrl: string,
    readonly model: string,
    readonly systemPrompt: string | undefined,
    private readonly apiKey: string | undefined,
  ) {}

  private url(path: string) {
    return `${this.baseUrl.replace(/\/+$/, "")}${path}`;
  }

  private headers(): Record<string, string> {
    return this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {};
  }

  private body(req: ChatRequest, stream: boolean): Record<string, unknown> {
    const o = req.options;
    const body: Record<string, unknown> = { model: req.model, messages: req.messages.map(wireMessage), stream };
    if (stream) body.stream_options = { include_usage: true };
    if (o.maxTokens !== undefined) body.max_tokens = o.maxTokens;
    if (o.temperature !== undefined) body.temperature = o.temperature;
    if (o.topP !== undefined) body.top_p = o.topP;
    if (o.seed !== undefined) body.seed = o.seed;
    // repeat_penalty / repeat_last_n have no OpenAI counterpart (and OpenAI rejects unknown fields)
    if (req.tools?.length) {
      body.tools = req.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.parameters } }));
      if (req.toolChoice) body.tool_choice = toolChoice(req.toolChoice);
      if (req.parallelToolCalls !== undefined) body.parallel_tool_calls = req.parallelToolCalls;
    }
    if (req.jsonSchema) body.response_format = { type: "json_schema", json_schema: { name: "response", schema: req.jsonSchema } };
    return body;
  }

  async *chat(req: ChatRequest, stream: boolean, signal: AbortSignal): AsyncGenerator<Delta> {
    const url = this.url("/chat/completions");
    const body = this.body(req, stream);
    if (!stream) {
      const r = await postJson<ChatResponse>(url, body, { headers: this.headers(), signal });
      const m = r.choices?.[0]?.message;
      if (!m) throw new RunnerError("ERROR_AND_RETRY", `LLM API ${url} answered without a choice`);
      const calls = new ToolCallAssembler();
      calls.add(m.tool_calls);
      const toolCalls = calls.done();
      yield {
        text: m.content ?? undefined,
        reasoning: reasoningOf(m),
        toolCalls: toolCalls.length ? toolCalls : undefined,
        usage: usageOf(r.usage),
        model: r.model,
      };
      return;
    }
    const res = await post(url, body, { headers: this.headers(), signal });
    const calls = new ToolCallAssembler();
    let usage: Delta["usage"];
    let model: string | undefined;
    for await (const chunk of sseJson<ChatResponse>(res, url, signal)) {
      if (chunk.error) throw new RunnerError("ERROR_AND_RETRY", `LLM API stream error: ${chunk.error.message ?? JSON.stringify(chunk.error)}`);
      model ??= chunk.model;
      if (chunk.usage) usage = usageOf(chunk.usage);
      const d = chunk.choices?.[0]?.delta;
      if (!d) continue;
      calls.add(d.tool_calls);
      const text = d.content ?? undefined;
      const reasoning = reasoningOf(d);
      if (text || reasoning) yield { text: text || undefined, reasoning: reasoning || undefined };
    }
    const toolCalls = calls.done();
    yield { toolCalls: toolCalls.length ? toolCalls : undefined, usage, model };
  }

  generate(req: GenerateRequest, stream: boolean, signal: AbortSignal): AsyncIterable<Delta> {
    if (req.context?.length) throw new RunnerError("FATAL_ERROR", "a generation context is only supported with ollama settings");
    const messages: Message[] = [];
    if (req.system) messages.push({ role: "system", text: req.system });
    messages.push({ role: "user", text: req.prompt });
    return this.chat({ model: req.model, messages, options: req.options, jsonSchema: req.jsonSchema }, stream, signal);
  }

  async embed(req: EmbedRequest, signal: AbortSignal): Promise<EmbedResponse> {
    const url = this.url("/embeddings");
    const body: Record<string, unknown> = { model: req.model, input: req.inputs, encoding_format: "float" };
    if (req.dimensions !== undefined) body.dimensions = req.dimensions;
    const r = await postJson<{ model?: string; data?: { index: number; embedding: number[] }[]; usage?: WireUsage }>(url, body, {
      headers: this.headers(),
      signal,
    });
    const data = [...(r.data ?? [])].sort((a, b) => a.index - b.index);
    if (data.length !== req.inputs.length) {
      throw new RunnerError("ERROR_AND_RETRY", `LLM API ${url} returned ${data.length} embeddings for ${req.inputs.length} inputs`);
    }
    return { vectors: data.map((d) => d.embedding), usage: usageOf(r.usage), model: r.model };
  }
}
