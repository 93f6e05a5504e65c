// What the DOCKER runner needs from a container engine. The Docker Engine API (dockerode, also Podman's
// compatible API) implements it in dockerode_engine.ts, Amazon ECS (one task per job) in ecs_engine.ts.

export interface ContainerSpec {
  image: string;
  /** Empty: the image's own. */
  cmd: string[];
  entrypoint: string[];
  /** "KEY=VALUE" entries. */
  env: string[];
  workingDir?: string;
  user?: string;
  /** Bind mounts "host:container[:ro]". */
  binds: string[];
  networkDisabled: boolean;
  exposedPorts: string[];
  shell: string[];
  argsEscaped?: boolean;
  macAddress?: string;
  platform?: string;
  /** Labels to find the container by (e.g. the job id). */
  labels: Record<string, string>;
  /** The channel the job runs on (the ECS backend sizes the task and its GPUs by it). */
  channel?: string;
}

export interface ExecSpec {
  cmd: string[];
  env: string[];
  workingDir?: string;
  user?: string;
}

export interface Output {
  stdout: Buffer;
  stderr: Buffer;
}

export interface ExecOutcome extends Output {
  exitCode: number;
}

/** The image is not present on the engine (create/exec refused for that reason). */
export class ImageNotFound extends Error {
  constructor(readonly image: string, detail: string) {
    super(detail);
    this.name = "ImageNotFound";
  }
}

export interface ContainerEngine {
  /** The engine cannot keep a container for exec (ECS): use_static workers then run one container per job too. */
  readonly oneShotOnly?: boolean;
  hasImage(image: string): Promise<boolean>;
  /** Pulls the image; rejects with the engine's or registry's message. */
  pull(image: string, platform: string | undefined, signal: AbortSignal): Promise<void>;
  /** Creates a container (not started) and returns its id; ImageNotFound when the image is absent. */
  create(spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  /** Resolves with the exit code once the container stopped. */
  wait(id: string): Promise<number>;
  /** Everything the container wrote, stdout and stderr apart. */
  logs(id: string): Promise<Output>;
  /** Runs a command in a running container and waits for it. */
  exec(id: string, spec: ExecSpec): Promise<ExecOutcome>;
  /** Kills and removes the container (no error when it is already gone). */
  remove(id: string): Promise<void>;
  /** Whether the container exists and runs. */
  isRunning(id: string): Promise<boolean>;
  /** The image's default entrypoint and cmd (to build the command of an exec). */
  imageCommand(image: string): Promise<{ entrypoint: string[]; cmd: string[] }>;
}
