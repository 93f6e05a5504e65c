// `node dist/healthcheck.mjs [host:port]`: the container's health probe (Docker HEALTHCHECK, ECS container
// health check). Exits 0 only when grpc.health.v1 on the local gRPC port (GRPC_ADDR's port) says SERVING.
// A container running the `worker` role serves no port: its health is its process, which the init (PID 1)
// exits with, so the probe passes there. A separate small bundle from the CLI: it runs every few seconds.
import { readFileSync } from "node:fs";
import { checkHealth, SERVING } from "../api/health_probe.js";
import { healthCheckAddr } from "./config.js";

/** The container's main command line (PID 1 is the init, then `node … <role>`), or [] where it cannot be read. */
function containerCommand(): string[] {
  try {
    return readFileSync("/proc/1/cmdline", "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

async function main(): Promise<number> {
  if (containerCommand().at(-1) === "worker") return 0;
  const addr = process.argv[2] ?? healthCheckAddr();
  try {
    const status = await checkHealth(addr);
    if (status === SERVING) return 0;
    console.error(`unhealthy: ${addr} reports status ${status}`);
  } catch (err) {
    console.error(`unhealthy: ${addr}: ${(err as Error).message}`);
  }
  return 1;
}

main().then((code) => process.exit(code));
