// A protocol double of an LLM server, for tests only: no model weights can run on these machines, so this
// node:http server speaks the OpenAI HTTP API (/v1/chat/completions, /v1/completions, /v1/embeddings; JSON
// and SSE) and Ollama's native API (/api/chat, /api/generate, /api/embed, /api/pull; JSON and NDJSON) with
// deterministic scripted answers, and records every request so tests can check what was sent.
//
// Script (last user message):
//   "call <tool> with <json>"  and <tool> is offered → a tool call with <json> as its arguments
//   "reason: <x>"              → "<think>thinking about <x></think>answer: <x>" (+ reasoning_content / thinking field)
//   "fail <status>"            → that HTTP status with an API error body
//   "slow"                     → answers after 10 s (for timeouts and cancellation)
//   anything else              → "echo: <text>"
// After tool results (last message role "tool"): "tool said: <content of each tool message, joined by ' | '>".
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface LlmDouble {
  /** http://127.0.0.1:port (OpenAI base URL: `${url}/v1`; Ollama base URL: `url`). */
  url: string;
  requests: RecordedRequest[];
  /** Requests to a path (e.g. "/v1/chat/completions"). */
  seen(path: string): RecordedRequest[];
  close(): Promise<void>;
}

export interface LlmDoubleOptions {
  /** When set, /v1/* requests need `Authorization: Bearer <apiKey>` (else 401). */
  apiKey?: string;
}

interface Msg {
  role: string;
  content?: unknown;
  tool_calls?: unknown[];
}

interface Reply {
  text: string;
  reasoning?: string;
  toolCall?: { name: string; arguments: string };
  status?: number;
  slow?: boolean;
}

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
const textOf = (c: unknown): string =>
  typeof c === "string" ? c : Array.isArray(c) ? c.map((p: any) => (p?.type === "text" ? p.text : `[${p?.type}]`)).join(" ") : "";

function toolNames(tools: unknown): string[] {
  return Array.isArray(tools) ? tools.map((t: any) => t?.function?.name ?? t?.name).filter((n): n is string => typeof n === "string") : [];
}

/** The scripted answer to a conversation. */
export function script(messages: Msg[], tools: unknown): Reply {
  const last = messages.at(-1);
  if (last?.role === "tool") {
    const results: string[] = [];
    for (let i = messages.length - 1; i >= 0 && messages[i].role === "tool"; i--) results.unshift(textOf(messages[i].content));
    return { text: `tool said: ${results.join(" | ")}` };
  }
  const user = [...messages].reverse().find((m) => m.role === "user");
  const text = textOf(user?.content).trim();
  const call = /^call (\S+) with (\{.*\})\s*$/s.exec(text);
  if (call && toolNames(tools).includes(call[1])) return { text: "", toolCall: { name: call[1], arguments: call[2] } };
  const fail = /^fail (\d{3})$/.exec(text);
  if (fail) return { text: "", status: Number(fail[1]) };
  if (text === "slow") return { text: "finally", slow: true };
  const reason = /^reason: (.*)$/s.exec(text);
  if (reason) return { text: `<think>thinking about ${reason[1]}</think>answer: ${reason[1]}`, reasoning: `field reasoning about ${reason[1]}` };
  return { text: `echo: ${text}` };
}

/** Deterministic vector of a text: [length, then hash-derived values in [0,1)]. */
export function vectorOf(text: string, dims = 8): number[] {
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.codePointAt(0)!, 16777619) >>> 0;
  const v = [text.length];
  for (let i = 1; i < dims; i++) {
    h = Math.imul(h ^ i, 16777619) >>> 0;
    v.push((h % 1000) / 1000);
  }
  return v;
}

/** Text pieces for streaming: each word with its following whitespace. */
const pieces = (s: string) => s.match(/\S+\s*|\s+/g) ?? [];

export async function startLlmDouble(opts: LlmDoubleOptions = {}): Promise<LlmDouble> {
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let seq = 0;

  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      let body: any = undefined;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = raw;
      }
      const path = new URL(req.url!, "http://x").pathname;
      requests.push({ method: req.method!, path, headers: req.headers, body });
      const json = (status: number, v: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(v));
      };
      const later = (ms: number, f: () => void) => {
        const t = setTimeout(() => {
          timers.delete(t);
          f();
        }, ms);
        timers.add(t);
      };
      if (path.startsWith("/v1/") && opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
        return json(401, { error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } });
      }
      if (req.method !== "POST" || typeof body !== "object" || body === null) return json(400, { error: { message: "expected a JSON POST" } });
      const model = body.model ?? "double";
      const id = `double-${++seq}`;

      switch (path) {
        case "/v1/chat/completions": {
          const reply = script(body.messages ?? [], body.tools);
          if (reply.status) return json(reply.status, { error: { message: `scripted failure ${reply.status}`, type: "server_error" } });
          const respond = () => openAiChat(res, body, model, id, reply);
          return reply.slow ? later(10_000, respond) : respond();
        }
        case "/v1/completions": {
          const text = `echo: ${String(body.prompt ?? "")}`;
          const usage = { prompt_tokens: words(String(body.prompt ?? "")), completion_tokens: words(text), total_tokens: 0 };
          if (!body.stream) return json(200, { id, object: "text_completion", model, choices: [{ index: 0, text, finish_reason: "stop" }], usage });
          res.writeHead(200, { "content-type": "text/event-stream" });
          for (const p of pieces(text)) res.write(`data: ${JSON.stringify({ id, object: "text_completion", model, choices: [{ index: 0, text: p, finish_reason: null }] })}\n\n`);
          res.write(`data: ${JSON.stringify({ id, object: "text_completion", model, choices: [{ index: 0, text: "", finish_reason: "stop" }], usage })}\n\n`);
          return res.end("data: [DONE]\n\n");
        }
        case "/v1/embeddings": {
          const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input];
          return json(200, {
            object: "list",
            model,
            // answered in reverse order: clients must sort by index
            data: inputs.map((t, index) => ({ object: "embedding", index, embedding: vectorOf(t, body.dimensions ?? 8) })).reverse(),
            usage: { prompt_tokens: inputs.reduce((n, t) => n + words(t), 0), total_tokens: 0 },
          });
        }
        case "/api/chat": {
          const reply = script(body.messages ?? [], body.tools);
          if (reply.status) return json(reply.status, { error: `scripted failure ${reply.status}` });
          const respond = () => ollamaChat(res, body, model, reply);
          return reply.slow ? later(10_000, respond) : respond();
        }
        case "/api/generate": {
          const prompt = String(body.prompt ?? "");
          const ctx: number[] = Array.isArray(body.context) ? body.context : [];
          const text = `echo: ${prompt}${ctx.length ? ` (context ${ctx.length})` : ""}`;
          const context = [...ctx, words(prompt), words(text)];
          const final = { model, created_at: new Date(0).toISOString(), response: "", done: true, done_reason: "stop", context, ...ollamaCounts(prompt, text) };
          if (body.stream === false) return json(200, { ...final, response: text });
          res.writeHead(200, { "content-type": "application/x-ndjson" });
          for (const p of pieces(text)) res.write(JSON.stringify({ model, response: p, done: false }) + "\n");
          return res.end(JSON.stringify(final) + "\n");
        }
        case "/api/embed": {
          const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input];
          return json(200, { model, embeddings: inputs.map((t) => vectorOf(t, body.dimensions ?? 8)), prompt_eval_count: inputs.reduce((n, t) => n + words(t), 0) });
        }
        case "/api/pull":
          return json(200, { status: "success" });
        default:
          return json(404, { error: { message: `no route ${path}` } });
      }
    });
  });

  function ollamaCounts(prompt: string, text: string) {
    return { prompt_eval_count: words(prompt), eval_count: words(text), prompt_eval_duration: 2_000_000, eval_duration: 5_000_000 };
  }

  function openAiChat(res: http.ServerResponse, body: any, model: string, id: string, reply: Reply) {
    const promptText = (body.messages ?? []).map((m: Msg) => textOf(m.content)).join(" ");
    const usage = { prompt_tokens: words(promptText), completion_tokens: words(reply.text) || 1, total_tokens: 0 };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const callId = `call_${id}`;
    const finish = reply.toolCall ? "tool_calls" : "stop";
    if (!body.stream) {
      const message: Record<string, unknown> = { role: "assistant", content: reply.toolCall ? null : reply.text };
      if (reply.reasoning) message.reasoning_content = reply.reasoning;
      if (reply.toolCall) message.tool_calls = [{ id: callId, type: "function", function: reply.toolCall }];
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({ id, object: "chat.completion", created: 0, model, choices: [{ index: 0, message, finish_reason: finish }], usage }));
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const chunk = (delta: unknown, finish_reason: string | null = null) =>
      res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: 0, model, choices: [{ index: 0, delta, finish_reason }] })}\n\n`);
    res.write(": keep-alive comment\n\n");
    chunk({ role: "assistant", content: "" });
    if (reply.reasoning) chunk({ reasoning_content: reply.reasoning });
    if (reply.toolCall) {
      // id and name first, then the arguments in two pieces, as OpenAI streams them
      const a = reply.toolCall.arguments;
      const half = Math.floor(a.length / 2);
      chunk({ tool_calls: [{ index: 0, id: callId, type: "function", function: { name: reply.toolCall.name, arguments: "" } }] });
      chunk({ tool_calls: [{ index: 0, function: { arguments: a.slice(0, half) } }] });
      chunk({ tool_calls: [{ index: 0, function: { arguments: a.slice(half) } }] });
    } else {
      for (const p of pieces(reply.text)) chunk({ content: p });
    }
    chunk({}, finish);
    if (body.stream_options?.include_usage) res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: 0, model, choices: [], usage })}\n\n`);
    res.end("data: [DONE]\n\n");
  }

  function ollamaChat(res: http.ServerResponse, body: any, model: string, reply: Reply) {
    const promptText = (body.messages ?? []).map((m: Msg) => textOf(m.content)).join(" ");
    const toolCalls = reply.toolCall ? [{ function: { name: reply.toolCall.name, arguments: JSON.parse(reply.toolCall.arguments) } }] : undefined;
    const final = {
      model,
      created_at: new Date(0).toISOString(),
      message: { role: "assistant", content: "" } as Record<string, unknown>,
      done: true,
      done_reason: "stop",
      ...ollamaCounts(promptText, reply.text),
    };
    if (body.stream === false) {
      final.message = { role: "assistant", content: reply.text, ...(reply.reasoning ? { thinking: reply.reasoning } : {}), ...(toolCalls ? { tool_calls: toolCalls } : {}) };
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify(final));
    }
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    const line = (message: unknown) => res.write(JSON.stringify({ model, created_at: new Date(0).toISOString(), message, done: false }) + "\n");
    if (reply.reasoning) line({ role: "assistant", content: "", thinking: reply.reasoning });
    if (toolCalls) line({ role: "assistant", content: "", tool_calls: toolCalls });
    for (const p of pieces(reply.text)) line({ role: "assistant", content: p });
    res.end(JSON.stringify(final) + "\n");
  }

  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    seen: (path) => requests.filter((r) => r.path === path),
    async close() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Runs the double as its own process (benches, manual tries): prints its URL. */
if (import.meta.url === `file://${process.argv[1]}`) {
  const d = await startLlmDouble({ apiKey: process.env.LLM_DOUBLE_API_KEY });
  console.log(d.url);
}
