// MCP_SERVER: the `echo` tool of @modelcontextprotocol/server-everything over stdio, registered through MCP_CONFIG.
// Without use_static every job starts the server process and initializes a session (~0.3 s); with use_static
// each pool slot keeps one connected server.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { RunnerBenchCase } from "./case.js";

const RUNNER = "bench-mcp-everything";
const EVERYTHING = path.resolve(import.meta.dirname, "../../node_modules/@modelcontextprotocol/server-everything/dist/index.js");

export const cases: RunnerBenchCase[] = [
  {
    name: "MCP_SERVER echo tool (server-everything, stdio)",
    runner: RUNNER,
    using: "echo",
    async prepare() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-mcp-"));
      const config = path.join(dir, "mcp-settings.toml");
      fs.writeFileSync(
        config,
        `[[server]]\nname = "${RUNNER}"\ndescription = "server-everything (bench)"\ntransport = "stdio"\n` +
          `command = ${JSON.stringify(process.execPath)}\nargs = ${JSON.stringify([EVERYTHING, "stdio"])}\n`,
      );
      return {
        settings: {},
        args: { message: "bench" },
        env: { MCP_CONFIG: config },
        cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
];
