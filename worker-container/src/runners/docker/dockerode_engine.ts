// ContainerEngine over the Docker Engine API (dockerode): Docker itself or Podman's compatible service.
import { PassThrough, type Readable } from "node:stream";
import Docker from "dockerode";
import type { ContainerEngine, ContainerSpec, ExecOutcome, ExecSpec, Output } from "./engine.js";
import { ImageNotFound } from "./engine.js";

/** dockerode connection options for a DOCKER_HOST value (unix://path, tcp://host:port, http(s)://host:port). */
export function connectionOptions(dockerHost: string): Docker.DockerOptions {
  if (dockerHost.startsWith("unix://")) return { socketPath: dockerHost.slice("unix://".length) };
  if (dockerHost.startsWith("/")) return { socketPath: dockerHost };
  const u = new URL(dockerHost.replace(/^tcp:/, "http:"));
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`unsupported DOCKER_HOST: ${dockerHost}`);
  return { protocol: u.protocol === "https:" ? "https" : "http", host: u.hostname, port: Number(u.port || (u.protocol === "https:" ? 2376 : 2375)) };
}

interface ApiError extends Error {
  statusCode?: number;
  json?: { message?: string };
}

const isStatus = (e: unknown, code: number) => (e as ApiError)?.statusCode === code;
/** The engine's own message (dockerode prefixes "(HTTP code N) ..."). */
const apiMessage = (e: unknown) => ((e as ApiError).json?.message ?? (e as Error).message ?? String(e)).trim();

/** Splits Docker's multiplexed stream format (8-byte frame headers; stream type 2 = stderr). */
export function demux(buf: Buffer): Output {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const n = buf.readUInt32BE(i + 4);
    (buf[i] === 2 ? err : out).push(buf.subarray(i + 8, i + 8 + n));
    i += 8 + n;
  }
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}

export class DockerodeEngine implements ContainerEngine {
  readonly docker: Docker;

  constructor(dockerHost: string) {
    this.docker = new Docker(connectionOptions(dockerHost));
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (e) {
      if (isStatus(e, 404)) return false;
      throw e;
    }
  }

  async pull(image: string, platform: string | undefined, signal: AbortSignal): Promise<void> {
    const stream = (await this.docker.pull(image, { platform, abortSignal: signal })) as Readable;
    // Pull errors arrive as progress events ({error}) in a 200 response.
    const events = await new Promise<Array<{ error?: string; errorDetail?: { message?: string } }>>((resolve, reject) =>
      this.docker.modem.followProgress(stream, (err: Error | null, out: unknown[]) => (err ? reject(err) : resolve(out as never))),
    );
    const failed = events.find((ev) => ev.error || ev.errorDetail);
    if (failed) throw new Error(failed.errorDetail?.message ?? failed.error);
  }

  async create(s: ContainerSpec): Promise<string> {
    try {
      const c = await this.docker.createContainer({
        Image: s.image,
        Cmd: s.cmd.length ? s.cmd : undefined,
        Entrypoint: s.entrypoint.length ? s.entrypoint : undefined,
        Env: s.env,
        WorkingDir: s.workingDir,
        User: s.user,
        NetworkDisabled: s.networkDisabled || undefined,
        ExposedPorts: s.exposedPorts.length ? Object.fromEntries(s.exposedPorts.map((p) => [p, {}])) : undefined,
        Shell: s.shell.length ? s.shell : undefined,
        ArgsEscaped: s.argsEscaped,
        MacAddress: s.macAddress,
        platform: s.platform,
        Labels: s.labels,
        HostConfig: { Binds: s.binds, NetworkMode: s.networkDisabled ? "none" : undefined },
      });
      return c.id;
    } catch (e) {
      // Docker: 404 "No such image"; Podman: 404 "no such container - no such image".
      if (isStatus(e, 404) && /image/i.test(apiMessage(e))) throw new ImageNotFound(s.image, apiMessage(e));
      throw e;
    }
  }

  async start(id: string): Promise<void> {
    await this.docker.getContainer(id).start();
  }

  async wait(id: string): Promise<number> {
    const r = (await this.docker.getContainer(id).wait()) as { StatusCode: number };
    return r.StatusCode;
  }

  async logs(id: string): Promise<Output> {
    const buf = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    return demux(buf);
  }

  async exec(id: string, spec: ExecSpec): Promise<ExecOutcome> {
    const exec = await this.docker.getContainer(id).exec({
      Cmd: spec.cmd,
      Env: spec.env,
      WorkingDir: spec.workingDir,
      User: spec.user,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const o = new PassThrough().on("data", (b: Buffer) => out.push(b));
    const e = new PassThrough().on("data", (b: Buffer) => err.push(b));
    this.docker.modem.demuxStream(stream, o, e);
    await new Promise<void>((resolve, reject) => {
      stream.once("end", resolve);
      stream.once("close", resolve);
      stream.once("error", reject);
    });
    // The stream may end a moment before the engine records the exit code.
    for (let i = 0; ; i++) {
      const info = await exec.inspect();
      if (!info.Running && info.ExitCode !== null) {
        return { exitCode: info.ExitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
      }
      if (i >= 100) throw new Error(`exec in container ${id} ended without an exit code`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (e) {
      if (!isStatus(e, 404)) throw e;
    }
  }

  async isRunning(id: string): Promise<boolean> {
    try {
      return (await this.docker.getContainer(id).inspect()).State.Running;
    } catch (e) {
      if (isStatus(e, 404)) return false;
      throw e;
    }
  }

  async imageCommand(image: string): Promise<{ entrypoint: string[]; cmd: string[] }> {
    let info: Docker.ImageInspectInfo;
    try {
      info = await this.docker.getImage(image).inspect();
    } catch (e) {
      if (isStatus(e, 404)) throw new ImageNotFound(image, apiMessage(e));
      throw e;
    }
    const asList = (v: unknown) => (Array.isArray(v) ? (v as string[]) : typeof v === "string" && v ? [v] : []);
    return { entrypoint: asList(info.Config?.Entrypoint), cmd: asList(info.Config?.Cmd) };
  }
}
