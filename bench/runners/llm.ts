// LLM chat against the LLM protocol double (test/helpers/openai_double.ts; no model weights run here): a
// one-message chat completion over the OpenAI-compatible API, so the figure is the runner's own overhead
// (args → HTTP request → JSON answer → LLMChatResult), not a model's.
import { startLlmDouble } from "../../test/helpers/openai_double.js";
import type { RunnerBenchCase } from "./case.js";

const KEY = "bench-llm-key";

export const cases: RunnerBenchCase[] = [
  {
    name: "LLM chat, OpenAI-compatible double (local)",
    runner: "LLM",
    using: "chat",
    async prepare() {
      const dbl = await startLlmDouble({ apiKey: KEY });
      return {
        settings: { genai: { model: "bench-double", base_url: `${dbl.url}/v1` } },
        args: { messages: [{ role: "USER", content: { text: "hello" } }], options: { max_tokens: 16 } },
        env: { LLM_API_KEY: KEY },
        cleanup: async () => {
          dbl.requests.length = 0;
          await dbl.close();
        },
      };
    },
  },
];
