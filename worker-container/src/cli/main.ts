// `jobworkerp [all-in-one|front|worker]`: runs the system in one of its roles; other commands (MCP server,
// the gRPC client) are dispatched through COMMANDS.
import { isClientInvocation } from "./client/invocation.js";
import { ConfigError, loadClientConfig, loadConfig, type Role } from "./config.js";

const ROLES: Role[] = ["all-in-one", "front", "worker"];
const USAGE = `usage: jobworkerp [all-in-one|front|worker]
  all-in-one (default)  gRPC front and workers in one process
  front                 gRPC front only (STORAGE_TYPE=Scalable or Aws)
  worker                job workers only (STORAGE_TYPE=Scalable or Aws)
  mcp [--stdio|--http] [-a host:port]   workers and runners as MCP tools (jobworkerp mcp --help)
  workflow run FILE [--input JSON] [--events] | workflow validate FILE   run/validate a workflow locally
  aws bootstrap         create the AWS resources (queues, DLQs, job-state table) at AWS_ENDPOINT_URL or in AWS
  [-a ADDRESS] <runner|worker|job|job-result|job-status|worker-instance> <command> ...
                        gRPC client (jobworkerp-client's commands; jobworkerp -a x --help)
Configuration comes from environment variables (see README.md).`;

type Command = (args: string[]) => Promise<number>;
/** Commands other than the server roles, by first word; each gets the words after it. */
const COMMANDS: Record<string, Command> = {
  mcp: async (args) => (await import("../mcp_server/command.js")).runMcpCommand(args),
  workflow: async (args) => (await import("../runners/workflow/cli.js")).runWorkflowCommand(args),
  aws: async (args) => (await import("./aws_bootstrap.js")).runAwsCommand(args),
};
/** The gRPC client, loaded only when used (`client/invocation.ts` says which command lines are its). */
const runClient: Command = async (args) => (await import("./client/index.js")).runClient(args, loadClientConfig());

async function main(argv: string[]): Promise<number> {
  if (isClientInvocation(argv)) return runClient(argv);
  const arg = argv[0] ?? "all-in-one";
  if (arg === "-h" || arg === "--help" || arg === "help") {
    console.log(USAGE);
    return 0;
  }
  if (Object.hasOwn(COMMANDS, arg)) return COMMANDS[arg](argv.slice(1));
  if (!ROLES.includes(arg as Role)) {
    console.error(`unknown command '${arg}'\n${USAGE}`);
    return 2;
  }
  const cfg = loadConfig(arg as Role);
  // the server graph is loaded only for the roles: client commands start in a fraction of the time
  const [{ default: pino }, { startGrpc }, { startFrontMcp }, { compose }] = await Promise.all([
    import("pino"),
    import("../api/server.js"),
    import("../mcp_server/front.js"),
    import("./compose.js"),
  ]);
  const log = pino({ level: cfg.logLevel, base: { role: cfg.role } });
  const running = await compose(cfg, log);
  const front = running.servesApi
    ? await startGrpc(running.system, cfg.grpcAddr, {
        authToken: cfg.authToken,
        maxMessageBytes: cfg.maxMessageBytes,
        grpcWeb: cfg.grpcWeb,
        onInternalError: (err, method) => log.error({ err, method }, "internal error"),
      })
    : undefined;
  if (front) log.info({ addr: cfg.grpcAddr, port: front.port, grpcWeb: !!cfg.grpcWeb, storage: cfg.storageType, channels: running.system.channels }, "jobworkerp listening");
  else log.info({ storage: cfg.storageType, channels: cfg.channels }, "jobworkerp worker running");
  const mcpHttp = front && cfg.mcp.enabled ? await startFrontMcp(running.system, cfg, log) : undefined;

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "shutting down");
      try {
        await running.stopWork();
        // calls still open (e.g. DIRECT waits on jobs other workers run) get a grace period before the bus closes
        await mcpHttp?.close();
        await front?.close(5_000);
        await running.close();
        resolve(0);
      } catch (err) {
        log.error({ err }, "shutdown failed");
        resolve(1);
      }
    };
    process.once("SIGINT", () => void stop("SIGINT"));
    process.once("SIGTERM", () => void stop("SIGTERM"));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ConfigError ? `configuration error: ${err.message}` : err);
    process.exit(1);
  },
);
