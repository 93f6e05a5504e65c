// `jobworkerp [global options] <group> <command> [flags]`: the client commands, with jobworkerp-client's
// names. Global options come before the group (as in jobworkerp-client); --json is accepted anywhere.
import { parseArgs } from "node:util";
import { Catalog } from "./catalog.js";
import { jobCommands } from "./commands/job.js";
import { jobResultCommands } from "./commands/job_result.js";
import { jobStatusCommands } from "./commands/job_status.js";
import { runnerCommands } from "./commands/runner.js";
import { workerCommands } from "./commands/worker.js";
import { workerInstanceCommands } from "./commands/worker_instance.js";
import { Connection } from "./connection.js";
import type { Group } from "./context.js";
import { EXIT, UsageError, describeError } from "./errors.js";
import type { CLIENT_GROUP_NAMES } from "./invocation.js";
import { Printer } from "./output.js";

export const CLIENT_GROUPS: Record<(typeof CLIENT_GROUP_NAMES)[number], Group> = {
  runner: runnerCommands,
  worker: workerCommands,
  job: jobCommands,
  "job-result": jobResultCommands,
  "job-status": jobStatusCommands,
  "worker-instance": workerInstanceCommands,
};

export const DEFAULT_ADDRESS = "http://localhost:9000";

export const CLIENT_USAGE = `client: jobworkerp [-a ADDRESS] [-t TIMEOUT_MS] [--json] <group> <command> [flags]
  -a, --address   server, http://host:port or host:port (default ${DEFAULT_ADDRESS}; https:// uses TLS)
  -t, --timeout   deadline of each request in ms (default: none)
  --json          machine-readable output (one JSON document; streams: one JSON line per item)
  env JOBWORKERP_AUTH_TOKEN is sent as the jobworkerp-auth header
groups:
${Object.entries(CLIENT_GROUPS)
  .map(([g, grp]) => `  ${g.padEnd(16)} ${Object.keys(grp.commands).join("|")}  — ${grp.summary}`)
  .join("\n")}
exit codes: 0 ok, 1 failure (gRPC error, not found, unreachable), 2 usage error, 3 the job ran and did not succeed
'jobworkerp <group> <command> --help' shows a command's flags.`;

const GLOBAL_OPTIONS = { address: { type: "string", short: "a" }, timeout: { type: "string", short: "t" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } } as const;
const TAKES_VALUE = new Set(["-a", "--address", "-t", "--timeout"]);

/** Splits `argv` into the global options before the group and the rest. */
function splitGlobals(argv: string[]): { globals: string[]; rest: string[] } {
  let i = 0;
  while (i < argv.length && argv[i].startsWith("-")) i += TAKES_VALUE.has(argv[i]) ? 2 : 1;
  return { globals: argv.slice(0, i), rest: argv.slice(i) };
}

export interface ClientEnv {
  authToken?: string;
}

/** Runs a client command line; returns the process exit code. Errors are printed, never thrown. */
export async function runClient(argv: string[], env: ClientEnv): Promise<number> {
  let address = DEFAULT_ADDRESS;
  let conn: Connection | undefined;
  try {
    const { globals, rest } = splitGlobals(argv);
    let g;
    try {
      g = parseArgs({ args: globals, options: GLOBAL_OPTIONS, strict: true }).values;
    } catch (e) {
      throw new UsageError(`${(e as Error).message.split(/\. (?=[A-Z])/)[0]}\n${CLIENT_USAGE}`);
    }
    if (g.address !== undefined) address = g.address;
    const [groupName, commandName, ...flags] = rest;
    if (g.help || !groupName) {
      if (!g.help) throw new UsageError(`missing command group\n${CLIENT_USAGE}`);
      process.stdout.write(`${CLIENT_USAGE}\n`);
      return EXIT.ok;
    }
    const group = (CLIENT_GROUPS as Record<string, Group | undefined>)[groupName];
    if (!group) throw new UsageError(`unknown command group '${groupName}'\n${CLIENT_USAGE}`);
    const groupHelp = `usage: jobworkerp ${groupName} <command>\n${Object.entries(group.commands)
      .map(([n, c]) => `  ${n.padEnd(20)} ${c.summary}`)
      .join("\n")}`;
    if (!commandName) throw new UsageError(`missing command\n${groupHelp}`);
    if (commandName === "help" || commandName === "--help" || commandName === "-h") {
      process.stdout.write(`${groupHelp}\n`);
      return EXIT.ok;
    }
    const command = group.commands[commandName];
    if (!command) throw new UsageError(`unknown command '${groupName} ${commandName}'\n${groupHelp}`);
    if (flags.includes("--help") || flags.includes("-h")) {
      process.stdout.write(`${command.usage}\n`);
      return EXIT.ok;
    }
    const timeout = g.timeout;
    if (timeout !== undefined && !/^\d+$/.test(timeout)) throw new UsageError(`--timeout must be milliseconds, got '${timeout}'`);
    conn = new Connection(address, { authToken: env.authToken, requestTimeoutMs: timeout === undefined ? undefined : Number(timeout) });
    const json = !!g.json || flags.includes("--json");
    const code = await command.run(flags, { conn, catalog: new Catalog(conn), print: new Printer(json) });
    return code ?? EXIT.ok;
  } catch (err) {
    const { message, exitCode } = describeError(err, address);
    process.stderr.write(`error: ${message}\n`);
    return exitCode;
  } finally {
    conn?.close();
  }
}
