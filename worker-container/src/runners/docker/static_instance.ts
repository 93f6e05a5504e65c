// use_static: one long-lived container per instance (idling in `sleep`), each job exec'd in it.
// A job that times out or is cancelled cannot be stopped on its own through the API (no exec kill), so the
// container is removed with it and the next job starts a new one. close() removes the container.
import { DockerArgsSchema, type DockerArgs } from "../../gen/jobworkerp/runner/docker_args_pb.js";
import { RunnerError, type RunContext, type RunnerInstance } from "../runner.js";
import { createContainer, engineError } from "./containers.js";
import type { ContainerEngine } from "./engine.js";
import { encodeResult } from "./one_shot.js";
import { runLimit, untilAborted, type RunLimit } from "./run_limit.js";
import { checkExit, containerLabels, decode, mergeEnv, timeoutSec, type Settings } from "./spec.js";

/** The idle process that keeps the container up (the image needs a `sleep` on its PATH). */
const IDLE_COMMAND = ["sleep", "2147483647"];

export class StaticInstance implements RunnerInstance {
  private containerId?: string;
  private imageCommand?: { entrypoint: string[]; cmd: string[] };

  constructor(
    private readonly engine: ContainerEngine,
    private readonly settings: Settings,
    private readonly image: string,
  ) {}

  /** Starts the container (also called at creation, so a Load pre-warms and a missing image fails early). */
  async ensureContainer(limit: RunLimit): Promise<string> {
    if (this.containerId !== undefined) return this.containerId;
    const s = this.settings.raw;
    const spec = {
      image: this.image,
      entrypoint: IDLE_COMMAND.slice(0, 1),
      cmd: IDLE_COMMAND.slice(1),
      env: mergeEnv(s.env, []),
      workingDir: s.workingDir || undefined,
      binds: s.volumes,
      networkDisabled: false,
      exposedPorts: [],
      shell: [],
      platform: s.platform || undefined,
      labels: containerLabels(),
    };
    const id = await createContainer(this.engine, spec, this.settings, limit);
    try {
      await this.engine.start(id);
      this.imageCommand ??= await this.engine.imageCommand(this.image);
    } catch (e) {
      await this.engine.remove(id).catch(() => {});
      throw engineError(e, `start the static container (${this.image})`);
    }
    this.containerId = id;
    return id;
  }

  /** Docker's rule: a given entrypoint drops the image's cmd. */
  private command(a: DockerArgs): string[] {
    const img = this.imageCommand!;
    const entry = a.entrypoint.length ? a.entrypoint : this.settings.raw.entrypoint.length ? this.settings.raw.entrypoint : undefined;
    const cmd = a.cmd.length ? a.cmd : entry ? [] : img.cmd;
    const command = [...(entry ?? img.entrypoint), ...cmd];
    if (command.length === 0) throw new RunnerError("FATAL_ERROR", `no command: set cmd (the image ${this.image} has no default command)`);
    return command;
  }

  private checkArgs(a: DockerArgs): void {
    const refuse = (what: string) => {
      throw new RunnerError("FATAL_ERROR", `${what} cannot be set per job for a use_static DOCKER worker (its container is shared); set it in the worker settings or disable use_static`);
    };
    if (a.image && a.image !== this.image) refuse(`image (${a.image})`);
    if (a.volumes.length) refuse("volumes");
    if (a.networkDisabled) refuse("network_disabled");
  }

  async run(bytes: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
    const a = decode(DockerArgsSchema, bytes, "DockerArgs");
    this.checkArgs(a);
    const limit = runLimit(ctx.signal, timeoutSec(this.settings, a));
    try {
      const id = await untilAborted(this.ensureContainer(limit), limit);
      const startedAt = Date.now();
      const t0 = performance.now();
      const o = await untilAborted(
        this.engine.exec(id, {
          cmd: this.command(a),
          env: mergeEnv([], a.env),
          workingDir: a.workingDir || this.settings.raw.workingDir || undefined,
          user: a.user || undefined,
        }),
        limit,
      );
      const executionTimeMs = Math.round(performance.now() - t0);
      const stderr = o.stderr.toString("utf8");
      checkExit(a, this.image, o.exitCode, stderr);
      return encodeResult({
        exitCode: o.exitCode,
        stdout: o.stdout.toString("utf8"),
        stderr,
        containerId: id,
        executionTimeMs: BigInt(executionTimeMs),
        startedAt: BigInt(startedAt),
      });
    } catch (e) {
      if (limit.signal.aborted) {
        await this.close(); // stops the exec'd command with its container
        throw limit.error();
      }
      // A container that died or was removed behind our back is replaced on the next job.
      const id = this.containerId;
      if (!(e instanceof RunnerError) && id !== undefined && !(await this.engine.isRunning(id).catch(() => true))) await this.close();
      throw engineError(e, `run a command in the static container (${this.image})`);
    } finally {
      limit.dispose();
    }
  }

  async close(): Promise<void> {
    const id = this.containerId;
    this.containerId = undefined;
    if (id !== undefined) await this.engine.remove(id).catch(() => {});
  }
}
