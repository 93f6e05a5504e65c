// What the runner's methods need from an LLM API, independent of its protocol (OpenAI-compatible or Ollama).

export type Role = "system" | "user" | "assistant" | "tool";

export interface ToolCall {
  id: string;
  name: string;
  /** JSON object text. */
  arguments: string;
}

export interface Message {
  role: Role;
  text?: string;
  image?: { contentType: string; url?: string; base64?: string };
  /** assistant: the tool calls it made. */
  toolCalls?: ToolCall[];
  /** tool: the call this message answers. */
  toolCallId?: string;
  toolName?: string;
}

export interface GenOptions {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  repeatPenalty?: number;
  repeatLastN?: number;
  seed?: number;
  /** Ask for / extract the model's reasoning. */
  reasoning?: boolean;
}

export interface ToolDef {
  name: string;
  description?: string;
  parameters: Record<string, unknown>;
}

export interface ChatRequest {
  model: string;
  messages: Message[];
  options: GenOptions;
  tools?: ToolDef[];
  /** "auto" | "none" | "required" | a tool name. */
  toolChoice?: string;
  parallelToolCalls?: boolean;
  jsonSchema?: Record<string, unknown>;
}

export interface GenerateRequest {
  model: string;
  system?: string;
  prompt: string;
  options: GenOptions;
  /** Ollama's conversation encoding from an earlier answer. */
  context?: number[];
  jsonSchema?: Record<string, unknown>;
}

export interface UsageInfo {
  promptTokens?: number;
  completionTokens?: number;
  promptSec?: number;
  completionSec?: number;
}

/** One piece of an answer; non-streaming calls yield a single delta holding everything. */
export interface Delta {
  text?: string;
  reasoning?: string;
  /** Complete calls (streamed fragments are assembled by the client before they are yielded). */
  toolCalls?: ToolCall[];
  usage?: UsageInfo;
  context?: number[];
  /** The model that answered (as the API names it). */
  model?: string;
}

export interface EmbedRequest {
  model: string;
  inputs: string[];
  dimensions?: number;
  /** "NONE" | "START" | "END" */
  truncate?: string;
}

export interface EmbedResponse {
  vectors: number[][];
  usage?: UsageInfo;
  model?: string;
}

export interface LlmClient {
  /** The worker's default model and system prompt. */
  readonly model: string;
  readonly systemPrompt?: string;
  chat(req: ChatRequest, stream: boolean, signal: AbortSignal): AsyncIterable<Delta>;
  generate(req: GenerateRequest, stream: boolean, signal: AbortSignal): AsyncIterable<Delta>;
  embed(req: EmbedRequest, signal: AbortSignal): Promise<EmbedResponse>;
  /** One-time preparation (Ollama pull_model). */
  prepare?(signal: AbortSignal): Promise<void>;
}
