// `jobworkerp [all-in-one|front|worker]`: runs the system in one of its roles.
import pino from "pino";
import { startGrpc } from "../api/server.js";
import { compose } from "./compose.js";
import { ConfigError, loadConfig, type Role } from "./config.js";

const ROLES: Role[] = ["all-in-one", "front", "worker"];
const USAGE = `usage: jobworkerp [all-in-one|front|worker]
  all-in-one (default)  gRPC front and workers in one process
  front                 gRPC front only (STORAGE_TYPE=Scalable)
  worker                job workers only (STORAGE_TYPE=Scalable)
Configuration comes from environment variables (see README.md).`;

async function main(argv: string[]): Promise<number> {
  const arg = argv[0] ?? "all-in-one";
  if (arg === "-h" || arg === "--help" || arg === "help") {
    console.log(USAGE);
    return 0;
  }
  if (!ROLES.includes(arg as Role)) {
    console.error(`unknown command '${arg}'\n${USAGE}`);
    return 2;
  }
  const cfg = loadConfig(arg as Role);
  const log = pino({ level: cfg.logLevel, base: { role: cfg.role } });
  const running = await compose(cfg, log);
  const front = running.servesApi
    ? await startGrpc(running.system, cfg.grpcAddr, {
        authToken: cfg.authToken,
        maxMessageBytes: cfg.maxMessageBytes,
        onInternalError: (err, method) => log.error({ err, method }, "internal error"),
      })
    : undefined;
  if (front) log.info({ addr: cfg.grpcAddr, port: front.port, storage: cfg.storageType, channels: running.system.channels }, "jobworkerp listening");
  else log.info({ storage: cfg.storageType, channels: cfg.channels }, "jobworkerp worker running");

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "shutting down");
      try {
        await running.stopWork();
        // calls still open (e.g. DIRECT waits on jobs other workers run) get a grace period before the bus closes
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
