// SLACK_POST_MESSAGE against a local server answering chat.postMessage with 200 {ok:true} (given to the job server
// through SLACK_API_BASE_URL).
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { RunnerBenchCase } from "./case.js";

const ANSWER = JSON.stringify({ ok: true, channel: "C0BENCH", ts: "1700000000.000100", message: { type: "message", text: "bench" } });

export const cases: RunnerBenchCase[] = [
  {
    name: "SLACK_POST_MESSAGE 200 ok (local)",
    runner: "SLACK_POST_MESSAGE",
    async prepare() {
      const server = createServer((req, res) => {
        req.resume();
        req.on("end", () => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(ANSWER);
        });
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const { port } = server.address() as AddressInfo;
      return {
        settings: { bot_token: "xoxb-bench" },
        args: { channel: "C0BENCH", text: "bench" },
        env: { SLACK_API_BASE_URL: `http://127.0.0.1:${port}/api` },
        cleanup: () => new Promise<void>((r) => server.close(() => r())),
      };
    },
  },
];
