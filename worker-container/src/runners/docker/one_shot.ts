// A fresh container per job: create → start → wait → logs, then always remove it (promptly on timeout/cancel).
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { DockerArgsSchema } from "../../gen/jobworkerp/runner/docker_args_pb.js";
import { DockerResultSchema } from "../../gen/jobworkerp/runner/docker_result_pb.js";
import type { RunContext, RunnerInstance } from "../runner.js";
import { createContainer, engineError } from "./containers.js";
import type { ContainerEngine } from "./engine.js";
import { runLimit, untilAborted } from "./run_limit.js";
import { checkExit, containerSpec, decode, timeoutSec, type Settings } from "./spec.js";

export const encodeResult = (r: MessageInitShape<typeof DockerResultSchema>) => toBinary(DockerResultSchema, create(DockerResultSchema, r));

export class OneShotInstance implements RunnerInstance {
  constructor(
    private readonly engine: ContainerEngine,
    private readonly settings: Settings,
  ) {}

  async run(bytes: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
    const a = decode(DockerArgsSchema, bytes, "DockerArgs");
    const spec = containerSpec(this.settings, a, ctx.jobId, ctx.channel);
    const limit = runLimit(ctx.signal, timeoutSec(this.settings, a));
    let id: string | undefined;
    const creating = createContainer(this.engine, spec, this.settings, limit);
    try {
      id = await untilAborted(creating, limit);
      const startedAt = Date.now();
      const t0 = performance.now();
      await untilAborted(this.engine.start(id).catch((e) => Promise.reject(engineError(e, `start the container (${spec.image})`))), limit);
      const exitCode = await untilAborted(this.engine.wait(id), limit);
      const executionTimeMs = Math.round(performance.now() - t0);
      const { stdout, stderr } = await untilAborted(this.engine.logs(id), limit);
      checkExit(a, spec.image, exitCode, stderr.toString("utf8"));
      return encodeResult({
        exitCode,
        stdout: stdout.toString("utf8"),
        stderr: stderr.toString("utf8"),
        containerId: id,
        executionTimeMs: BigInt(executionTimeMs),
        startedAt: BigInt(startedAt),
      });
    } catch (e) {
      if (limit.signal.aborted) throw limit.error();
      throw engineError(e, `run the container (${spec.image})`);
    } finally {
      limit.dispose();
      if (id !== undefined) await this.engine.remove(id).catch(() => {});
      // A create still in flight when the job aborted: remove its container once it exists.
      else void creating.then((late) => this.engine.remove(late)).catch(() => {});
    }
  }
}
