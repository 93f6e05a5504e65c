// Recognises a client command line cheaply, so the entry point loads the client only when it is used.

/** jobworkerp-client's command groups (`index.ts` maps each to its commands). */
export const CLIENT_GROUP_NAMES = ["runner", "worker", "job", "job-result", "job-status", "worker-instance"] as const;

const GLOBAL_FLAG = /^(-a|-t|--address|--timeout|--json)(=|$)/;

/**
 * `jobworkerp [-a ADDR] [-t MS] [--json] <group> <command> …`. A bare `jobworkerp worker` stays the worker
 * role; `jobworkerp worker list` (any word after it) is the client.
 */
export function isClientInvocation(argv: string[]): boolean {
  const first = argv[0];
  if (first === undefined) return false;
  if (GLOBAL_FLAG.test(first)) return true;
  if (first === "worker") return argv.length > 1;
  return (CLIENT_GROUP_NAMES as readonly string[]).includes(first);
}
