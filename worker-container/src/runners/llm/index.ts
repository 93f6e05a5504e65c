// LLM runner (32768): chat, completion and embedding against an OpenAI-compatible API (`genai` settings)
// or Ollama (`ollama`), with tools: the client's own (returned as pending calls) and the server's
// workers/runners (run automatically with is_auto_calling) through an injected ToolHost.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import { LLMChatArgsSchema } from "../../gen/jobworkerp/runner/llm/chat_args_pb.js";
import { LLMChatResultSchema } from "../../gen/jobworkerp/runner/llm/chat_result_pb.js";
import { LLMCompletionArgsSchema } from "../../gen/jobworkerp/runner/llm/completion_args_pb.js";
import { LLMCompletionResultSchema } from "../../gen/jobworkerp/runner/llm/completion_result_pb.js";
import { LLMEmbeddingArgsSchema } from "../../gen/jobworkerp/runner/llm/embedding_args_pb.js";
import { LLMEmbeddingResultSchema } from "../../gen/jobworkerp/runner/llm/embedding_result_pb.js";
import { LLMRunnerSettingsSchema } from "../../gen/jobworkerp/runner/llm/runner_pb.js";
import { protoText } from "../proto_text.js";
import { RunnerError, type RunContext, type RunnerDefinition, type RunnerInstance } from "../runner.js";
import { ChatSession, mergeChatEvents, type ChatEvent } from "./chat.js";
import { completionEvents, mergeCompletionEvents } from "./completion.js";
import { embed, type Chunking } from "./embedding.js";
import { OLLAMA_BASE_URL, OllamaClient } from "./ollama.js";
import { OPENAI_BASE_URL, OpenAiClient } from "./openai.js";
import type { LlmClient } from "./provider.js";
import type { ToolHost } from "./tools.js";

export interface LlmRunnerOptions {
  /** Bearer token for `genai` APIs (config: LLM_API_KEY, else OPENAI_API_KEY). */
  apiKey?: string;
}

function decode<D extends DescMessage>(schema: D, bytes: Uint8Array, what: string): MessageShape<D> {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid ${what}: ${(e as Error).message}`);
  }
}

function baseUrl(raw: string | undefined, def: string): string {
  const s = raw || def;
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new RunnerError("FATAL_ERROR", `base_url is not a valid URL: ${JSON.stringify(s)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new RunnerError("FATAL_ERROR", `base_url must be http(s): ${s}`);
  return s;
}

function client(settings: Uint8Array, opts: LlmRunnerOptions): { client: LlmClient; chunking?: Chunking } {
  const s = decode(LLMRunnerSettingsSchema, settings, "LLMRunnerSettings");
  const chunking = s.embeddingChunking;
  switch (s.settings.case) {
    case "genai": {
      const g = s.settings.value;
      if (!g.model) throw new RunnerError("FATAL_ERROR", "genai.model is required");
      const url = baseUrl(g.baseUrl, OPENAI_BASE_URL);
      if (!opts.apiKey && new URL(url).hostname === "api.openai.com") {
        throw new RunnerError("FATAL_ERROR", "no API key for api.openai.com: set LLM_API_KEY or OPENAI_API_KEY in the server's environment");
      }
      return { client: new OpenAiClient(url, g.model, g.systemPrompt, opts.apiKey), chunking };
    }
    case "ollama": {
      const o = s.settings.value;
      if (!o.model) throw new RunnerError("FATAL_ERROR", "ollama.model is required");
      return { client: new OllamaClient(baseUrl(o.baseUrl, OLLAMA_BASE_URL), o.model, o.systemPrompt, o.pullModel ?? false), chunking };
    }
    default:
      throw new RunnerError("FATAL_ERROR", "LLMRunnerSettings needs `ollama` or `genai` settings");
  }
}

const encodeChat = (e: ChatEvent) => toBinary(LLMChatResultSchema, create(LLMChatResultSchema, e));

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Streams as one result, merged like the unary run's events: text deltas joined, usage from the done chunk. */
export const collectChatStream = (chunks: Uint8Array[]) => encodeChat(mergeChatEvents(chunks.map((c) => fromBinary(LLMChatResultSchema, c))));
export const collectCompletionStream = (chunks: Uint8Array[]) =>
  toBinary(LLMCompletionResultSchema, create(LLMCompletionResultSchema, mergeCompletionEvents(chunks.map((c) => fromBinary(LLMCompletionResultSchema, c)))));

class LlmInstance implements RunnerInstance {
  constructor(
    private readonly client: LlmClient,
    private readonly chunking: Chunking | undefined,
    private readonly toolHost: ToolHost | undefined,
  ) {}

  async run(args: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
    await this.client.prepare?.(ctx.signal);
    switch (ctx.using) {
      case "chat": {
        const session = new ChatSession(this.client, this.toolHost, decode(LLMChatArgsSchema, args, "LLMChatArgs"), ctx.signal);
        return encodeChat(mergeChatEvents(await collect(session.events(false))));
      }
      case "completion": {
        const a = decode(LLMCompletionArgsSchema, args, "LLMCompletionArgs");
        const merged = mergeCompletionEvents(await collect(completionEvents(this.client, a, false, ctx.signal)));
        return toBinary(LLMCompletionResultSchema, create(LLMCompletionResultSchema, merged));
      }
      case "embedding": {
        const r = await embed(this.client, decode(LLMEmbeddingArgsSchema, args, "LLMEmbeddingArgs"), this.chunking, ctx.signal);
        return toBinary(LLMEmbeddingResultSchema, create(LLMEmbeddingResultSchema, r));
      }
      default:
        throw new RunnerError("FATAL_ERROR", `LLM has no method '${ctx.using}' (chat, completion, embedding)`);
    }
  }

  async *runStream(args: Uint8Array, ctx: RunContext): AsyncGenerator<Uint8Array> {
    await this.client.prepare?.(ctx.signal);
    switch (ctx.using) {
      case "chat": {
        const session = new ChatSession(this.client, this.toolHost, decode(LLMChatArgsSchema, args, "LLMChatArgs"), ctx.signal);
        for await (const e of session.events(true)) yield encodeChat(e);
        return;
      }
      case "completion": {
        const a = decode(LLMCompletionArgsSchema, args, "LLMCompletionArgs");
        for await (const e of completionEvents(this.client, a, true, ctx.signal)) {
          yield toBinary(LLMCompletionResultSchema, create(LLMCompletionResultSchema, e));
        }
        return;
      }
      case "embedding":
        yield await this.run(args, ctx);
        return;
      default:
        throw new RunnerError("FATAL_ERROR", `LLM has no method '${ctx.using}' (chat, completion, embedding)`);
    }
  }
}

/** The LLM runner definition; `toolHost` runs the server's workers/runners as tools (absent: client tools only). */
export function llmRunner(toolHost?: ToolHost, opts: LlmRunnerOptions = {}): RunnerDefinition {
  const settingsProto = protoText("jobworkerp/runner/llm/runner.proto");
  const text = (f: string) => protoText(`jobworkerp/runner/llm/${f}.proto`);
  return {
    id: 32768n,
    name: "LLM",
    description: "Chat, text completion and embeddings with an OpenAI-compatible API or Ollama; tools: the client's own and the server's workers/runners.",
    runnerType: RunnerType.LLM,
    settingsProto,
    settingsSchema: LLMRunnerSettingsSchema,
    methods: {
      completion: {
        argsProto: text("completion_args"),
        resultProto: text("completion_result"),
        argsSchema: LLMCompletionArgsSchema,
        resultSchema: LLMCompletionResultSchema,
        collectStream: collectCompletionStream,
        description: "Complete a prompt; streaming yields text deltas, the last one (done=true) with usage.",
        outputType: StreamingOutputType.BOTH,
      },
      chat: {
        argsProto: text("chat_args"),
        resultProto: text("chat_result"),
        argsSchema: LLMChatArgsSchema,
        resultSchema: LLMChatResultSchema,
        collectStream: collectChatStream,
        description: "Answer a conversation, with tools; streaming yields deltas and tool events, the last one (done=true) with usage.",
        outputType: StreamingOutputType.BOTH,
      },
      embedding: {
        argsProto: text("embedding_args"),
        resultProto: text("embedding_result"),
        argsSchema: LLMEmbeddingArgsSchema,
        resultSchema: LLMEmbeddingResultSchema,
        description: "Embed texts (optionally chunked) into vectors.",
        outputType: StreamingOutputType.NON_STREAMING,
      },
    },
    async create(settings: Uint8Array) {
      const c = client(settings, opts);
      return new LlmInstance(c.client, c.chunking, toolHost);
    },
  };
}
