// The spine's runners as a baseline: COMMAND `true` and HTTP_REQUEST GET of a local 200 OK server.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { RunnerBenchCase } from "./case.js";

export const cases: RunnerBenchCase[] = [
  {
    name: "COMMAND `true`",
    runner: "COMMAND",
    async prepare() {
      return { settings: {}, args: { command: "true" }, cleanup: async () => {} };
    },
  },
  {
    name: "HTTP_REQUEST GET 200 OK (local)",
    runner: "HTTP_REQUEST",
    async prepare() {
      const server = createServer((_req, res) => res.end("ok"));
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const { port } = server.address() as AddressInfo;
      return {
        settings: { base_url: `http://127.0.0.1:${port}` },
        args: { method: "GET", path: "/" },
        cleanup: () => new Promise<void>((r) => server.close(() => r())),
      };
    },
  },
];
