// The `chat` method: messages → model → (tool calls → tools → model)* → answer, as a sequence of
// LLMChatResult events (streamed as they come, or merged into one result).
import type { MessageInitShape } from "@bufbuild/protobuf";
import { LLMChatArgs_ChatRole, type LLMChatArgs, type LLMChatArgs_ChatMessage } from "../../gen/jobworkerp/runner/llm/chat_args_pb.js";
import type { LLMChatResultSchema } from "../../gen/jobworkerp/runner/llm/chat_result_pb.js";
import { RunnerError } from "../runner.js";
import { ReasoningFilter, UsageTotal, genOptions, parseJsonSchema } from "./common.js";
import type { ChatRequest, LlmClient, Message, Role, ToolCall, ToolDef } from "./provider.js";
import type { ToolHost } from "./tools.js";

export type ChatEvent = MessageInitShape<typeof LLMChatResultSchema>;
type ToolExecutionResultInit = NonNullable<ChatEvent["toolExecutionResults"]>[number];

/** Model calls per job when tools run automatically (a model that keeps calling tools is stopped). */
export const MAX_TOOL_ROUNDS = 10;

const ROLES: Record<number, Role> = {
  [LLMChatArgs_ChatRole.SYSTEM]: "system",
  [LLMChatArgs_ChatRole.USER]: "user",
  [LLMChatArgs_ChatRole.ASSISTANT]: "assistant",
  [LLMChatArgs_ChatRole.TOOL]: "tool",
};

/** client_tools_json: an OpenAI `tools` array ({type:"function", function:{…}}), bare function objects accepted. */
export function parseClientTools(json: string | undefined): ToolDef[] {
  if (json === undefined || json.trim() === "") return [];
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `client_tools_json is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(v)) throw new RunnerError("FATAL_ERROR", "client_tools_json must be a JSON array of tools");
  return v.map((t: unknown, i) => {
    const f = ((t as { function?: unknown })?.function ?? t) as { name?: unknown; description?: unknown; parameters?: unknown };
    if (typeof f?.name !== "string" || f.name === "") throw new RunnerError("FATAL_ERROR", `client_tools_json[${i}] has no function name`);
    const parameters = (f.parameters ?? { type: "object", properties: {} }) as Record<string, unknown>;
    return { name: f.name, description: typeof f.description === "string" ? f.description : undefined, parameters };
  });
}

interface ToolRun {
  message: Message;
  result: ToolExecutionResultInit;
}

export class ChatSession {
  private readonly messages: Message[] = [];
  private readonly usage = new UsageTotal();
  private serverTools = new Set<string>();
  private tools: ToolDef[] = [];

  constructor(
    private readonly client: LlmClient,
    private readonly toolHost: ToolHost | undefined,
    private readonly args: LLMChatArgs,
    private readonly signal: AbortSignal,
  ) {}

  private get model() {
    return this.args.model || this.client.model;
  }

  /** Runs one server tool; failures become the tool's answer (the model may recover), not the job's. */
  private async runTool(call: ToolCall, onStarted: (jobId: bigint) => void): Promise<ToolRun> {
    const answer = (text: string): Message => ({ role: "tool", toolCallId: call.id, toolName: call.name, text });
    if (!this.toolHost || !this.serverTools.has(call.name)) {
      const error = `unknown tool '${call.name}'`;
      return { message: answer(`error: ${error}`), result: { callId: call.id, fnName: call.name, result: "", error, success: false } };
    }
    try {
      const out = await this.toolHost.call(call.name, call.arguments || "{}", this.signal, onStarted);
      return { message: answer(out.result), result: { callId: call.id, fnName: call.name, result: out.result, success: true, jobId: out.jobId } };
    } catch (e) {
      if (this.signal.aborted) throw e;
      const error = (e as Error).message;
      return { message: answer(`error: ${error}`), result: { callId: call.id, fnName: call.name, result: "", error, success: false } };
    }
  }

  /** Runs calls one after the other, reporting each job as it starts. */
  private async *runTools(calls: ToolCall[]): AsyncGenerator<ChatEvent, ToolExecutionResultInit[]> {
    const results: ToolExecutionResultInit[] = [];
    for (const call of calls) {
      let started: (jobId: bigint) => void = () => {};
      const startedP = new Promise<bigint>((r) => (started = r));
      const done = this.runTool(call, started);
      const first = await Promise.race([startedP, done]);
      if (typeof first === "bigint") yield { toolExecutionStarted: { callId: call.id, fnName: call.name, jobId: first } };
      const run = await done;
      this.messages.push(run.message);
      results.push(run.result);
    }
    return results;
  }

  private async *conversation(): AsyncGenerator<ChatEvent> {
    if (this.client.systemPrompt && !this.args.messages.some((m) => m.role === LLMChatArgs_ChatRole.SYSTEM)) {
      this.messages.push({ role: "system", text: this.client.systemPrompt });
    }
    for (const [i, m] of this.args.messages.entries()) {
      const requests = yield* this.message(m, i);
      if (requests.length) yield { toolExecutionResults: requests };
    }
  }

  /** One ChatMessage into API messages; TOOL tool_execution_requests run here. */
  private async *message(m: LLMChatArgs_ChatMessage, i: number): AsyncGenerator<ChatEvent, ToolExecutionResultInit[]> {
    const role = ROLES[m.role];
    if (!role) throw new RunnerError("FATAL_ERROR", `messages[${i}].role must be SYSTEM, USER, ASSISTANT or TOOL`);
    const c = m.content?.content;
    switch (c?.case) {
      case "text":
        this.messages.push({ role, text: c.value });
        return [];
      case "image": {
        const src = c.value.source;
        if (!src?.url && !src?.base64) throw new RunnerError("FATAL_ERROR", `messages[${i}].image has no url or base64 source`);
        this.messages.push({ role, image: { contentType: c.value.contentType, url: src.url || undefined, base64: src.base64 || undefined } });
        return [];
      }
      case "toolCalls":
        this.messages.push({ role: "assistant", toolCalls: c.value.calls.map((t) => ({ id: t.callId, name: t.fnName, arguments: t.fnArguments })) });
        return [];
      case "toolResults":
        for (const r of c.value.results) this.messages.push({ role: "tool", toolCallId: r.callId, toolName: r.fnName, text: r.content });
        return [];
      case "toolExecutionRequests":
        return yield* this.runTools(c.value.requests.map((r) => ({ id: r.callId, name: r.fnName, arguments: r.fnArguments })));
      default:
        throw new RunnerError("FATAL_ERROR", `messages[${i}] has no content`);
    }
  }

  private async loadTools(): Promise<void> {
    const fo = this.args.functionOptions;
    const client = parseClientTools(fo?.clientToolsJson);
    let server: ToolDef[] = [];
    if (fo?.useFunctionCalling) {
      let useRunners = fo.useRunnersAsFunction ?? false;
      let useWorkers = fo.useWorkersAsFunction ?? false;
      if (!useRunners && !useWorkers && !fo.functionSetName) useRunners = useWorkers = true;
      if (!this.toolHost) throw new RunnerError("FATAL_ERROR", "server tools are not available in this runner");
      try {
        server = await this.toolHost.list({ useRunners, useWorkers, functionSetName: fo.functionSetName });
      } catch (e) {
        throw e instanceof RunnerError ? e : new RunnerError("FATAL_ERROR", `listing tools failed: ${(e as Error).message}`);
      }
    }
    const clientNames = new Set(client.map((t) => t.name));
    // a client tool shadows a server tool of the same name
    server = server.filter((t) => !clientNames.has(t.name));
    this.serverTools = new Set(server.map((t) => t.name));
    this.tools = [...server, ...client];
  }

  /** The job's events; the last one has done=true. */
  async *events(stream: boolean): AsyncGenerator<ChatEvent> {
    if (this.args.messages.length === 0) throw new RunnerError("FATAL_ERROR", "messages is empty");
    if (!this.model) throw new RunnerError("FATAL_ERROR", "no model: set it in the worker settings or the args");
    const jsonSchema = parseJsonSchema(this.args.jsonSchema);
    await this.loadTools();
    yield* this.conversation();
    const fo = this.args.functionOptions;
    const options = genOptions(this.args.options);
    for (let round = 0; round < MAX_TOOL_ROUNDS; round++) {
      const req: ChatRequest = {
        model: this.model,
        messages: this.messages,
        options,
        tools: this.tools.length ? this.tools : undefined,
        toolChoice: fo?.toolChoice || undefined,
        parallelToolCalls: fo?.parallelToolCalls,
        jsonSchema,
      };
      const filter = new ReasoningFilter(options.reasoning ?? false);
      let text = "";
      let calls: ToolCall[] = [];
      for await (const d of this.client.chat(req, stream, this.signal)) {
        this.usage.add(d);
        if (d.toolCalls) calls = calls.concat(d.toolCalls);
        const piece = filter.feed(d);
        text += piece.text;
        if (piece.text || piece.reasoning) yield piece2event(piece);
      }
      const rest = filter.flush();
      text += rest.text;
      if (rest.text || rest.reasoning) yield piece2event(rest);

      if (calls.length === 0) {
        yield { done: true, usage: this.usage.message(this.model) };
        return;
      }
      const toolCalls = { calls: calls.map((c) => ({ callId: c.id, fnName: c.name, fnArguments: c.arguments })) };
      const auto = fo?.isAutoCalling ?? false;
      if (!auto || calls.some((c) => !this.serverTools.has(c.name))) {
        // the client runs (or approves) them and continues the conversation with tool_results / tool_execution_requests
        yield {
          content: { content: { case: "toolCalls", value: toolCalls } },
          pendingToolCalls: toolCalls,
          requiresToolExecution: true,
          done: true,
          usage: this.usage.message(this.model),
        };
        return;
      }
      yield { content: { content: { case: "toolCalls", value: toolCalls } } };
      this.messages.push({ role: "assistant", text: text || undefined, toolCalls: calls });
      const results = yield* this.runTools(calls);
      yield { toolExecutionResults: results };
    }
    throw new RunnerError("OTHER_ERROR", `the model was still calling tools after ${MAX_TOOL_ROUNDS} rounds`);
  }
}

const piece2event = (p: { text: string; reasoning: string }): ChatEvent => ({
  content: p.text ? { content: { case: "text", value: p.text } } : undefined,
  reasoningContent: p.reasoning || undefined,
});

/**
 * One result from a job's events: the final round's text (text before a tool round belongs to that round),
 * all tool executions, and the last event's pending calls and usage.
 */
export function mergeChatEvents(events: ChatEvent[]): ChatEvent {
  let text = "";
  let reasoning = "";
  const results: ToolExecutionResultInit[] = [];
  let last: ChatEvent = {};
  for (const e of events) {
    if (e.toolExecutionResults?.length) {
      results.push(...e.toolExecutionResults);
      text = "";
      reasoning = "";
    }
    if (e.content?.content?.case === "text") text += e.content.content.value;
    if (e.reasoningContent) reasoning += e.reasoningContent;
    if (e.done) last = e;
  }
  const content = last.content ?? (text ? { content: { case: "text" as const, value: reasoning ? text.trimStart() : text } } : undefined);
  return {
    content,
    reasoningContent: reasoning ? reasoning.trim() : undefined,
    done: true,
    usage: last.usage,
    pendingToolCalls: last.pendingToolCalls,
    requiresToolExecution: last.requiresToolExecution,
    toolExecutionResults: results,
  };
}
