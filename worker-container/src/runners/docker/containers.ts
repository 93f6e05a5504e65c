// Container creation with the pull rule, and engine failures turned into runner errors.
//
// Pull rule: an image is pulled only when it is the worker settings' `from_image` and the engine lacks it
// (once: afterwards it is present). Images from repo/tag or from the job's args are never pulled; a missing
// one fails the job with FATAL_ERROR.
import { RunnerError } from "../runner.js";
import { ImageNotFound, type ContainerEngine, type ContainerSpec } from "./engine.js";
import type { RunLimit } from "./run_limit.js";
import type { Settings } from "./spec.js";

/** Connection failures are worth a retry; anything else the engine refuses is reported as it said it. */
export function engineError(e: unknown, what: string): Error {
  if (e instanceof RunnerError) return e;
  const err = e as NodeJS.ErrnoException & { statusCode?: number };
  if (err.code === "ECONNREFUSED" || err.code === "ENOENT" || err.code === "EACCES" || err.code === "ECONNRESET") {
    return new RunnerError("ERROR_AND_RETRY", `cannot reach the container engine (DOCKER_HOST) to ${what}: ${err.message}`);
  }
  const msg = (err.message ?? String(e)).replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, "").trim();
  // The command in the image cannot be run (missing executable, bad user, working dir...): retrying won't help.
  const permanent = err.statusCode === 400 || /executable file not found|no such file or directory|permission denied|unable to find user/i.test(msg);
  return new RunnerError(permanent ? "FATAL_ERROR" : "ERROR_AND_RETRY", `cannot ${what}: ${msg}`);
}

export async function createContainer(engine: ContainerEngine, spec: ContainerSpec, s: Settings, limit: RunLimit): Promise<string> {
  try {
    return await engine.create(spec);
  } catch (e) {
    if (!(e instanceof ImageNotFound)) throw engineError(e, `create a container from ${spec.image}`);
    if (!s.raw.fromImage || spec.image !== s.raw.fromImage) {
      throw new RunnerError(
        "FATAL_ERROR",
        `image ${spec.image} is not present on the container engine (${e.message}); only the worker settings' from_image is pulled`,
      );
    }
  }
  try {
    await engine.pull(spec.image, spec.platform, limit.signal);
  } catch (e) {
    if (limit.signal.aborted) throw limit.error();
    const msg = (e as Error).message;
    const permanent = /not found|manifest unknown|unauthorized|denied|invalid reference/i.test(msg);
    throw new RunnerError(permanent ? "FATAL_ERROR" : "ERROR_AND_RETRY", `cannot pull image ${spec.image}: ${msg}`);
  }
  try {
    return await engine.create(spec);
  } catch (e) {
    throw engineError(e, `create a container from ${spec.image}`);
  }
}
