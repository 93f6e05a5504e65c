// The `completion` method: system prompt + prompt → text (Ollama: /api/generate with its context).
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { LLMCompletionArgs } from "../../gen/jobworkerp/runner/llm/completion_args_pb.js";
import type { LLMCompletionResultSchema } from "../../gen/jobworkerp/runner/llm/completion_result_pb.js";
import { RunnerError } from "../runner.js";
import { ReasoningFilter, UsageTotal, genOptions, parseJsonSchema } from "./common.js";
import type { LlmClient } from "./provider.js";

export type CompletionEvent = MessageInitShape<typeof LLMCompletionResultSchema>;

export async function* completionEvents(client: LlmClient, args: LLMCompletionArgs, stream: boolean, signal: AbortSignal): AsyncGenerator<CompletionEvent> {
  const model = args.model || client.model;
  if (!model) throw new RunnerError("FATAL_ERROR", "no model: set it in the worker settings or the args");
  if (args.prompt === "") throw new RunnerError("FATAL_ERROR", "prompt is empty");
  if (args.functionOptions?.useFunctionCalling) throw new RunnerError("FATAL_ERROR", "function calling is not supported by completion; use the chat method");
  const options = genOptions(args.options);
  const ctx = args.context?.context;
  const deltas = client.generate(
    {
      model,
      system: args.systemPrompt ?? client.systemPrompt,
      prompt: args.prompt,
      options,
      context: ctx?.case === "ollamaContext" ? ctx.value.data : undefined,
      jsonSchema: parseJsonSchema(args.jsonSchema),
    },
    stream,
    signal,
  );
  const usage = new UsageTotal();
  const filter = new ReasoningFilter(options.reasoning ?? false);
  let context: number[] | undefined;
  const event = (p: { text: string; reasoning: string }): CompletionEvent => ({
    content: p.text ? { content: { case: "text", value: p.text } } : undefined,
    reasoningContent: p.reasoning || undefined,
  });
  for await (const d of deltas) {
    usage.add(d);
    if (d.context?.length) context = d.context;
    const p = filter.feed(d);
    if (p.text || p.reasoning) yield event(p);
  }
  const rest = filter.flush();
  if (rest.text || rest.reasoning) yield event(rest);
  yield {
    done: true,
    usage: usage.message(model),
    context: context ? { context: { case: "ollamaContext", value: { data: context } } } : undefined,
  };
}

export function mergeCompletionEvents(events: CompletionEvent[]): CompletionEvent {
  let text = "";
  let reasoning = "";
  let last: CompletionEvent = {};
  for (const e of events) {
    if (e.content?.content?.case === "text") text += e.content.content.value;
    if (e.reasoningContent) reasoning += e.reasoningContent;
    if (e.done) last = e;
  }
  return {
    content: { content: { case: "text", value: reasoning ? text.trimStart() : text } },
    reasoningContent: reasoning ? reasoning.trim() : undefined,
    done: true,
    usage: last.usage,
    context: last.context,
  };
}
