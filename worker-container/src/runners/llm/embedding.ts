// The `embedding` method: texts (optionally chunked) → vectors, one API call for all chunks.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { LLMEmbeddingArgs } from "../../gen/jobworkerp/runner/llm/embedding_args_pb.js";
import type { LLMEmbeddingResultSchema } from "../../gen/jobworkerp/runner/llm/embedding_result_pb.js";
import { RunnerError } from "../runner.js";
import type { LlmClient } from "./provider.js";

export interface Chunking {
  maxChunkTokens?: number;
  minChunkTokens?: number;
  /** 0/1 = about 4 characters a token, 2 = a word a token. */
  tokenEstimation?: number;
}

export interface Chunk {
  begin: number;
  end: number;
}

const CHARS_PER_TOKEN = 4;
const WORDS = 2;

/**
 * Splits `text` into chunks of at most max_chunk_tokens (estimated), cutting at whitespace where one is
 * near the limit; a last chunk under min_chunk_tokens joins the one before. Positions are UTF-16 offsets.
 */
export function chunkText(text: string, c: Chunking | undefined): Chunk[] {
  const max = c?.maxChunkTokens ?? 0;
  if (!max || text.length === 0) return [{ begin: 0, end: text.length }];
  const words = c?.tokenEstimation === WORDS;
  const tokens = (s: string) => (words ? s.split(/\s+/).filter(Boolean).length : Math.ceil(s.length / CHARS_PER_TOKEN));
  const chunks: Chunk[] = [];
  let begin = 0;
  if (words) {
    const re = /\S+/g;
    let m: RegExpExecArray | null;
    let count = 0;
    let end = 0;
    while ((m = re.exec(text))) {
      if (count === max) {
        chunks.push({ begin, end });
        begin = m.index;
        count = 0;
      }
      count++;
      end = m.index + m[0].length;
    }
    chunks.push({ begin, end: text.length });
  } else {
    const maxChars = max * CHARS_PER_TOKEN;
    while (text.length - begin > maxChars) {
      let end = begin + maxChars;
      const cut = text.lastIndexOf(" ", end);
      if (cut > begin + maxChars / 2) end = cut + 1;
      chunks.push({ begin, end });
      begin = end;
    }
    chunks.push({ begin, end: text.length });
  }
  const min = c?.minChunkTokens ?? 0;
  if (chunks.length > 1 && tokens(text.slice(chunks.at(-1)!.begin, chunks.at(-1)!.end)) < min) {
    const lastChunk = chunks.pop()!;
    chunks.at(-1)!.end = lastChunk.end;
  }
  return chunks;
}

export async function embed(
  client: LlmClient,
  args: LLMEmbeddingArgs,
  defaultChunking: Chunking | undefined,
  signal: AbortSignal,
): Promise<MessageInitShape<typeof LLMEmbeddingResultSchema>> {
  const model = args.model || client.model;
  if (!model) throw new RunnerError("FATAL_ERROR", "no model: set it in the worker settings or the args");
  if (args.inputs.length === 0) throw new RunnerError("FATAL_ERROR", "inputs is empty");
  const chunking = args.chunking ?? defaultChunking;
  const pieces: { input: number; begin: number; end: number; text: string }[] = [];
  for (const [i, input] of args.inputs.entries()) {
    if (input.content.case !== "text") throw new RunnerError("FATAL_ERROR", `inputs[${i}]: only text can be embedded`);
    const text = input.content.value;
    for (const c of chunkText(text, chunking)) pieces.push({ input: i, begin: c.begin, end: c.end, text: text.slice(c.begin, c.end) });
  }
  const r = await client.embed({ model, inputs: pieces.map((p) => p.text), dimensions: args.options?.dimensions, truncate: args.options?.truncate }, signal);
  return {
    embeddings: pieces.map((p, k) => ({
      vector: r.vectors[k],
      inputIndex: p.input,
      beginPosition: p.begin,
      endPosition: p.end,
      content: p.text,
      dimensions: r.vectors[k].length,
    })),
    usage: { model: r.model || model, promptTokens: r.usage?.promptTokens },
  };
}
