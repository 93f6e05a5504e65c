// DockerRunnerSettings + DockerArgs → what to run: image, merged env and volumes, time limit, exit rules.
import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { DockerArgs } from "../../gen/jobworkerp/runner/docker_args_pb.js";
import type { DockerRunnerSettings } from "../../gen/jobworkerp/runner/docker_settings_pb.js";
import { RunnerError } from "../runner.js";
import type { ContainerSpec } from "./engine.js";

const STDERR_EXCERPT_CHARS = 1000;

export function decode<D extends DescMessage>(schema: D, bytes: Uint8Array, what: string): MessageShape<D> {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid ${what}: ${(e as Error).message}`);
  }
}

/** Validated settings: the settings' image (from_image, else repo:tag) and whether it may be pulled. */
export interface Settings {
  raw: DockerRunnerSettings;
  image?: string;
}

export function checkSettings(s: DockerRunnerSettings): Settings {
  if (s.fromSrc) throw new RunnerError("FATAL_ERROR", "from_src (building an image from a source) is not supported; give from_image or repo/tag");
  checkEnv(s.env, "settings env");
  checkVolumes(s.volumes, "settings volumes");
  const image = s.fromImage || (s.repo ? `${s.repo}:${s.tag || "latest"}` : undefined);
  return { raw: s, image };
}

function checkEnv(env: string[], what: string): void {
  for (const e of env) {
    if (e.indexOf("=") <= 0) throw new RunnerError("FATAL_ERROR", `${what}: entry must be KEY=VALUE, got ${JSON.stringify(e)}`);
  }
}

function checkVolumes(vols: string[], what: string): void {
  for (const v of vols) {
    const parts = v.split(":");
    const ok = parts.length >= 2 && parts.length <= 3 && parts[0].startsWith("/") && parts[1].startsWith("/")
      && (parts.length === 2 || /^(ro|rw)$/.test(parts[2]));
    if (!ok) throw new RunnerError("FATAL_ERROR", `${what}: expected "/host/path:/container/path[:ro|rw]", got ${JSON.stringify(v)}`);
  }
}

/** Settings env then args env; a key set twice keeps its last value. */
export function mergeEnv(settingsEnv: string[], argsEnv: string[]): string[] {
  checkEnv(argsEnv, "env");
  const byKey = new Map<string, string>();
  for (const e of [...settingsEnv, ...argsEnv]) byKey.set(e.slice(0, e.indexOf("=")), e);
  return [...byKey.values()];
}

/** Labels on every container the runner creates (to find a job's container: `label=jobworkerp.job_id=ID`). */
export const containerLabels = (jobId?: bigint): Record<string, string> =>
  jobId === undefined ? { "jobworkerp.runner": "DOCKER" } : { "jobworkerp.runner": "DOCKER", "jobworkerp.job_id": String(jobId) };

/** The one-shot container for a job (args over settings). */
export function containerSpec(s: Settings, a: DockerArgs, jobId: bigint, channel?: string): ContainerSpec {
  const image = a.image || s.image;
  if (!image) throw new RunnerError("FATAL_ERROR", "no image: set from_image (or repo/tag) in the worker settings or image in the args");
  checkVolumes(a.volumes, "volumes");
  return {
    image,
    cmd: a.cmd,
    entrypoint: a.entrypoint.length ? a.entrypoint : s.raw.entrypoint,
    env: mergeEnv(s.raw.env, a.env),
    workingDir: a.workingDir || s.raw.workingDir || undefined,
    user: a.user || undefined,
    binds: [...s.raw.volumes, ...a.volumes],
    networkDisabled: a.networkDisabled ?? false,
    exposedPorts: a.exposedPorts,
    shell: a.shell,
    argsEscaped: a.argsEscaped,
    macAddress: a.macAddress || undefined,
    platform: s.raw.platform || undefined,
    labels: containerLabels(jobId),
    channel,
  };
}

/** Seconds for this run (args over settings); 0 = only the job's own timeout. */
export const timeoutSec = (s: Settings, a: DockerArgs): number => Number(a.timeoutSec ?? s.raw.timeoutSec ?? 0n);

/** Throws when the exit code counts as a failure under the args' rules (as COMMAND does). */
export function checkExit(a: DockerArgs, image: string, exitCode: number, stderr: string): void {
  if (exitCode === 0 || !a.treatNonzeroAsError || a.successExitCodes.includes(exitCode)) return;
  const excerpt = stderr.trim().slice(-STDERR_EXCERPT_CHARS);
  throw new RunnerError("ERROR_AND_RETRY", `container (${image}) exited with code ${exitCode}${excerpt ? `: ${excerpt}` : ""}`);
}
