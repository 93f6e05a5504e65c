// Ollama's native API (`ollama` settings): /api/chat, /api/generate, /api/embed (JSON, or NDJSON when streaming).
import { RunnerError } from "../runner.js";
import { ndjson, post, postJson } from "./http.js";
import type { ChatRequest, Delta, EmbedRequest, EmbedResponse, GenOptions, GenerateRequest, LlmClient, Message, ToolCall } from "./provider.js";

export const OLLAMA_BASE_URL = "http://localhost:11434";

interface WireToolCall {
  id?: string;
  function?: { name?: string; arguments?: unknown };
}
interface Answer {
  model?: string;
  message?: { content?: string; thinking?: string; tool_calls?: WireToolCall[] };
  response?: string;
  thinking?: string;
  context?: number[];
  done?: boolean;
  error?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  prompt_eval_duration?: number;
  eval_duration?: number;
}

function options(o: GenOptions): Record<string, number> {
  const out: Record<string, number> = {};
  if (o.maxTokens !== undefined) out.num_predict = o.maxTokens;
  if (o.temperature !== undefined) out.temperature = o.temperature;
  if (o.topP !== undefined) out.top_p = o.topP;
  if (o.repeatPenalty !== undefined) out.repeat_penalty = o.repeatPenalty;
  if (o.repeatLastN !== undefined) out.repeat_last_n = o.repeatLastN;
  if (o.seed !== undefined) out.seed = o.seed;
  return out;
}

function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text || "{}");
  } catch {
    throw new RunnerError("FATAL_ERROR", `tool call arguments are not JSON: ${text.slice(0, 200)}`);
  }
}

function wireMessage(m: Message): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.text ?? "" };
  if (m.image) {
    if (!m.image.base64) throw new RunnerError("FATAL_ERROR", "ollama takes images as base64 only (image.source.url is not supported)");
    out.images = [m.image.base64];
  }
  if (m.toolCalls?.length) out.tool_calls = m.toolCalls.map((c) => ({ function: { name: c.name, arguments: parseArguments(c.arguments) } }));
  if (m.role === "tool" && m.toolName) out.tool_name = m.toolName;
  return out;
}

const NS = 1e9;
function usage(a: Answer): Delta["usage"] {
  return {
    promptTokens: a.prompt_eval_count,
    completionTokens: a.eval_count,
    promptSec: a.prompt_eval_duration !== undefined ? a.prompt_eval_duration / NS : undefined,
    completionSec: a.eval_duration !== undefined ? a.eval_duration / NS : undefined,
  };
}

let callSeq = 0;
function toolCalls(wire: WireToolCall[] | undefined): ToolCall[] | undefined {
  if (!wire?.length) return undefined;
  return wire.map((c) => ({
    // Ollama may not name its calls: give them ids so tool results can refer to them
    id: c.id || `call_${++callSeq}`,
    name: c.function?.name ?? "",
    arguments: typeof c.function?.arguments === "string" ? c.function.arguments : JSON.stringify(c.function?.arguments ?? {}),
  }));
}

/** Pulls are done once per process and (base URL, model). */
const pulled = new Map<string, Promise<void>>();

export class OllamaClient implements LlmClient {
  constructor(
    private readonly baseUrl: string,
    readonly model: string,
    readonly systemPrompt: string | undefined,
    private readonly pullModel: boolean,
  ) {}

  private url(path: string) {
    return `${this.baseUrl.replace(/\/+$/, "")}${path}`;
  }

  async prepare(signal: AbortSignal): Promise<void> {
    if (!this.pullModel) return;
    const key = `${this.baseUrl} ${this.model}`;
    let p = pulled.get(key);
    if (!p) {
      p = postJson<Answer>(this.url("/api/pull"), { model: this.model, stream: false }, { signal }).then((a) => {
        if (a.error) throw new RunnerError("ERROR_AND_RETRY", `ollama pull of ${this.model} failed: ${a.error}`);
      });
      pulled.set(key, p);
      p.catch(() => pulled.delete(key)); // try again with the next job
    }
    await p;
  }

  private async *answers(path: string, body: Record<string, unknown>, stream: boolean, signal: AbortSignal): AsyncGenerator<Answer> {
    const url = this.url(path);
    if (!stream) {
      const a = await postJson<Answer>(url, body, { signal });
      if (a.error) throw new RunnerError("ERROR_AND_RETRY", `ollama ${path}: ${a.error}`);
      yield a;
      return;
    }
    const res = await post(url, body, { signal });
    for await (const a of ndjson<Answer>(res, url, signal)) {
      if (a.error) throw new RunnerError("ERROR_AND_RETRY", `ollama ${path}: ${a.error}`);
      yield a;
    }
  }

  async *chat(req: ChatRequest, stream: boolean, signal: AbortSignal): AsyncGenerator<Delta> {
    const body: Record<string, unknown> = { model: req.model, messages: req.messages.map(wireMessage), stream, options: options(req.options) };
    // Ollama has no tool_choice / parallel_tool_calls
    if (req.tools?.length) body.tools = req.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.parameters } }));
    if (req.jsonSchema) body.format = req.jsonSchema;
    for await (const a of this.answers("/api/chat", body, stream, signal)) {
      yield {
        text: a.message?.content || undefined,
        reasoning: a.message?.thinking || undefined,
        toolCalls: toolCalls(a.message?.tool_calls),
        usage: a.done ? usage(a) : undefined,
        model: a.model,
      };
    }
  }

  async *generate(req: GenerateRequest, stream: boolean, signal: AbortSignal): AsyncGenerator<Delta> {
    const body: Record<string, unknown> = { model: req.model, prompt: req.prompt, stream, options: options(req.options) };
    if (req.system) body.system = req.system;
    if (req.context?.length) body.context = req.context;
    if (req.jsonSchema) body.format = req.jsonSchema;
    for await (const a of this.answers("/api/generate", body, stream, signal)) {
      yield {
        text: a.response || undefined,
        reasoning: a.thinking || undefined,
        usage: a.done ? usage(a) : undefined,
        context: a.context,
        model: a.model,
      };
    }
  }

  async embed(req: EmbedRequest, signal: AbortSignal): Promise<EmbedResponse> {
    const url = this.url("/api/embed");
    const body: Record<string, unknown> = { model: req.model, input: req.inputs };
    if (req.truncate !== undefined) body.truncate = req.truncate.toUpperCase() !== "NONE";
    if (req.dimensions !== undefined) body.dimensions = req.dimensions;
    const r = await postJson<{ model?: string; embeddings?: number[][]; prompt_eval_count?: number; error?: string }>(url, body, { signal });
    if (r.error) throw new RunnerError("ERROR_AND_RETRY", `ollama /api/embed: ${r.error}`);
    const vectors = r.embeddings ?? [];
    if (vectors.length !== req.inputs.length) {
      throw new RunnerError("ERROR_AND_RETRY", `ollama /api/embed returned ${vectors.length} embeddings for ${req.inputs.length} inputs`);
    }
    return { vectors, usage: { promptTokens: r.prompt_eval_count }, model: r.model };
  }
}
