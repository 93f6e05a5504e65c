// One runner benchmark case for `npm run bench:runners` (bench/runners.ts): a trivial target for one runner,
// run as DIRECT jobs through the gRPC API, with and without use_static.
export interface PreparedCase {
  /** Worker settings and job args as JSON objects for the runner's served settings/args protos. */
  settings: Record<string, unknown>;
  args: Record<string, unknown>;
  /** Extra env for the server process (e.g. DOCKER_HOST). */
  env?: Record<string, string>;
  cleanup(): Promise<void>;
}

export interface RunnerBenchCase {
  /** e.g. "DOCKER `true` container" */
  name: string;
  /** The runner's name as RunnerService serves it (e.g. "DOCKER"). */
  runner: string;
  using?: string;
  /** Starts the target (a local server, an image...) and says how to reach it. */
  prepare(): Promise<PreparedCase>;
}
