// Pieces the chat and completion methods share: options, JSON Schema parsing, usage totals, reasoning.
import { RunnerError } from "../runner.js";
import type { Delta, GenOptions, UsageInfo } from "./provider.js";
import { ThinkSplitter } from "./reasoning.js";

/** LLMOptions as the args carry them: the provider options, with the proto's name for reasoning. */
export type LLMOptionsIn = Omit<GenOptions, "reasoning"> & { extractReasoningContent?: boolean };

export function genOptions(o: LLMOptionsIn | undefined): GenOptions {
  return {
    maxTokens: o?.maxTokens,
    temperature: o?.temperature,
    topP: o?.topP,
    repeatPenalty: o?.repeatPenalty,
    repeatLastN: o?.repeatLastN,
    seed: o?.seed,
    reasoning: o?.extractReasoningContent ?? false,
  };
}

export function parseJsonSchema(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `json_schema is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new RunnerError("FATAL_ERROR", "json_schema must be a JSON object");
  return v as Record<string, unknown>;
}

/** Sums the usage of every model call of a job (auto-calling makes several). */
export class UsageTotal {
  private u: UsageInfo = {};
  model = "";

  add(d: Delta) {
    if (d.model) this.model = d.model;
    const x = d.usage;
    if (!x) return;
    const plus = (a: number | undefined, b: number | undefined) => (b === undefined ? a : (a ?? 0) + b);
    this.u = {
      promptTokens: plus(this.u.promptTokens, x.promptTokens),
      completionTokens: plus(this.u.completionTokens, x.completionTokens),
      promptSec: plus(this.u.promptSec, x.promptSec),
      completionSec: plus(this.u.completionSec, x.completionSec),
    };
  }

  message(requestedModel: string) {
    return {
      model: this.model || requestedModel,
      promptTokens: this.u.promptTokens,
      completionTokens: this.u.completionTokens,
      totalPromptTimeSec: this.u.promptSec,
      totalCompletionTimeSec: this.u.completionSec,
    };
  }
}

/**
 * Text and reasoning of a delta. With extract_reasoning_content, the API's reasoning field and <think>
 * sections of the text become reasoning; without it the text is passed through as the model wrote it.
 */
export class ReasoningFilter {
  private splitter?: ThinkSplitter;

  constructor(extract: boolean) {
    if (extract) this.splitter = new ThinkSplitter();
  }

  feed(d: Delta): { text: string; reasoning: string } {
    if (!this.splitter) return { text: d.text ?? "", reasoning: "" };
    const s = this.splitter.feed(d.text ?? "");
    return { text: s.text, reasoning: (d.reasoning ?? "") + s.reasoning };
  }

  flush(): { text: string; reasoning: string } {
    return this.splitter?.flush() ?? { text: "", reasoning: "" };
  }
}
