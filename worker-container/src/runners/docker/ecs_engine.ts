// ContainerEngine over Amazon ECS (DOCKER_BACKEND=ecs): a job's container runs as an ECS task of its image.
//   create  → a task definition per (image, entrypoint, working dir, user, platform, task size, GPUs), found by a
//             family named from a hash of those, registered once (a process that finds the family reuses it)
//   start   → RunTask with the job's command and environment as container overrides, in the configured subnets
//             (awsvpc): Fargate, or the GPU capacity provider when the job's channel has GPUs
//   wait    → DescribeTasks with backoff until the task is STOPPED; the exit code of its container
//   logs    → the task's awslogs stream (GetLogEvents); stdout and stderr arrive merged, so all of it is stdout
//   remove  → StopTask when the task still runs (job timeout or cancellation)
// No exec into a task: a use_static worker runs its jobs one task each (oneShotOnly).
import { randomUUID, createHash } from "node:crypto";
import {
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StopTaskCommand,
  type ContainerDefinition,
  type ECSClient,
  type RunTaskCommandInput,
  type Task,
} from "@aws-sdk/client-ecs";
import { GetLogEventsCommand, type CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { RunnerError } from "../runner.js";
import type { ContainerEngine, ContainerSpec, ExecOutcome, Output } from "./engine.js";

/** The container of every job task (its awslogs stream is `job/job/<task id>`). */
export const JOB_CONTAINER = "job";
const LOG_STREAM_PREFIX = "job";

export interface TaskResources {
  /** CPU units (1024 = 1 vCPU) and MiB: a valid Fargate pair for channels without GPUs. */
  cpu: number;
  memoryMiB: number;
  gpu: number;
}

export interface EcsEngineOptions {
  cluster: string;
  /** awsvpc networking of the job tasks. */
  subnets: string[];
  securityGroups: string[];
  assignPublicIp?: boolean;
  executionRoleArn: string;
  taskRoleArn?: string;
  /** CloudWatch Logs group of the job tasks (awslogs) and its region. */
  logGroup: string;
  region: string;
  /** Capacity provider of GPU tasks; without one they run with the EC2 launch type. */
  gpuCapacityProvider?: string;
  /** Task definition families are `<familyPrefix>-docker-<hash>`. */
  familyPrefix: string;
  /** Size and GPUs of a job task by the channel the job runs on (undefined: not known). */
  resourcesOf(channel: string | undefined): TaskResources;
  /** DescribeTasks backoff while waiting (default 1 s doubling to 10 s). */
  poll?: { initialMs: number; maxMs: number };
  /** A stopped task's log events may reach CloudWatch a moment later: an empty stream is read again after this (default 2 s). */
  logSettleMs?: number;
}

interface Handle {
  spec: ContainerSpec;
  resources: TaskResources;
  taskDefinitionArn: string;
  taskArn?: string;
  stopped?: Task;
  removed: boolean;
}

const FATAL_AWS_ERRORS = new Set(["ClientException", "InvalidParameterException", "AccessDeniedException", "ClusterNotFoundException"]);

/** ECS/CloudWatch refusals of our request are permanent; throttling, outages and network failures are worth a retry. */
function awsError(e: unknown, what: string): RunnerError {
  if (e instanceof RunnerError) return e;
  const err = e as Error & { name?: string };
  const kind = FATAL_AWS_ERRORS.has(err.name ?? "") ? "FATAL_ERROR" : "ERROR_AND_RETRY";
  return new RunnerError(kind, `ECS: cannot ${what}: ${err.message ?? String(e)}`);
}

/** Docker's `os/arch` platform as an ECS runtime platform. */
function runtimePlatform(platform: string | undefined) {
  if (!platform) return undefined;
  const arch = platform.split("/")[1];
  if (arch === "arm64") return { operatingSystemFamily: "LINUX" as const, cpuArchitecture: "ARM64" as const };
  if (arch === "amd64") return { operatingSystemFamily: "LINUX" as const, cpuArchitecture: "X86_64" as const };
  throw new RunnerError("FATAL_ERROR", `platform ${platform} is not available on ECS (linux/amd64 or linux/arm64)`);
}

/** How a stopped task ended: its container's exit code, or why it never produced one. */
export function taskExit(task: Task): number {
  const c = task.containers?.find((x) => x.name === JOB_CONTAINER) ?? task.containers?.[0];
  if (typeof c?.exitCode === "number") return c.exitCode;
  const why = [task.stopCode, task.stoppedReason, c?.reason].filter(Boolean).join(": ") || "the task stopped without an exit code";
  // The image cannot be had: retrying will not help (as the local backend's missing image).
  const permanent = /CannotPullContainerError/.test(why) && /not found|manifest unknown|denied|unauthorized|invalid reference/i.test(why);
  throw new RunnerError(permanent ? "FATAL_ERROR" : "ERROR_AND_RETRY", `ECS task ${task.taskArn ?? ""} failed: ${why}`);
}

/** Where a job task runs: Fargate without GPUs, else the GPU capacity provider (or EC2 capacity when none is set). */
export function runTaskPlacement(r: TaskResources, gpuCapacityProvider: string | undefined): Pick<RunTaskCommandInput, "launchType" | "capacityProviderStrategy"> {
  if (r.gpu === 0) return { launchType: "FARGATE" };
  return gpuCapacityProvider ? { capacityProviderStrategy: [{ capacityProvider: gpuCapacityProvider, weight: 1 }] } : { launchType: "EC2" };
}

export class EcsEngine implements ContainerEngine {
  readonly oneShotOnly = true;
  private readonly handles = new Map<string, Handle>();
  private readonly taskDefinitions = new Map<string, Promise<string>>();

  constructor(
    private readonly ecs: ECSClient,
    private readonly logsClient: CloudWatchLogsClient,
    private readonly opts: EcsEngineOptions,
  ) {}

  async hasImage(): Promise<boolean> {
    return true; // ECS pulls the image when the task starts
  }

  async pull(): Promise<void> {}

  async create(spec: ContainerSpec): Promise<string> {
    if (spec.binds.length) throw new RunnerError("FATAL_ERROR", "volumes (bind mounts) are not available on the ECS backend: the task runs on another host");
    if (spec.networkDisabled) throw new RunnerError("FATAL_ERROR", "network_disabled is not available on the ECS backend (tasks use awsvpc networking)");
    const resources = this.opts.resourcesOf(spec.channel);
    const taskDefinitionArn = await this.taskDefinition(spec, resources);
    const id = randomUUID();
    this.handles.set(id, { spec, resources, taskDefinitionArn, removed: false });
    return id;
  }

  /** The ARN of the task definition for this spec (registered at most once per process and content). */
  private taskDefinition(spec: ContainerSpec, r: TaskResources): Promise<string> {
    const container: ContainerDefinition = {
      name: JOB_CONTAINER,
      image: spec.image,
      essential: true,
      entryPoint: spec.entrypoint.length ? spec.entrypoint : undefined,
      workingDirectory: spec.workingDir,
      user: spec.user,
      memory: r.memoryMiB, // the task's memory as the container's limit (EC2 placement needs a container-level value)
      resourceRequirements: r.gpu > 0 ? [{ type: "GPU", value: String(r.gpu) }] : undefined,
      logConfiguration: {
        logDriver: "awslogs",
        options: { "awslogs-group": this.opts.logGroup, "awslogs-region": this.opts.region, "awslogs-stream-prefix": LOG_STREAM_PREFIX },
      },
    };
    const definition = {
      requiresCompatibilities: [r.gpu > 0 ? ("EC2" as const) : ("FARGATE" as const)],
      networkMode: "awsvpc" as const,
      cpu: String(r.cpu),
      memory: String(r.memoryMiB),
      executionRoleArn: this.opts.executionRoleArn,
      taskRoleArn: this.opts.taskRoleArn,
      runtimePlatform: runtimePlatform(spec.platform),
      containerDefinitions: [container],
    };
    const key = JSON.stringify(definition);
    let arn = this.taskDefinitions.get(key);
    if (!arn) {
      const family = `${this.opts.familyPrefix}-docker-${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;
      arn = this.findOrRegister(family, definition);
      this.taskDefinitions.set(key, arn);
      arn.catch(() => this.taskDefinitions.delete(key)); // a failure is not cached
    }
    return arn;
  }

  private async findOrRegister(family: string, definition: Omit<ConstructorParameters<typeof RegisterTaskDefinitionCommand>[0], "family">): Promise<string> {
    try {
      const found = await this.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: family }));
      const td = found.taskDefinition;
      if (td?.status === "ACTIVE" && td.taskDefinitionArn) return td.taskDefinitionArn;
    } catch (e) {
      if (!FATAL_AWS_ERRORS.has((e as Error).name)) throw awsError(e, `look up task definition ${family}`); // unknown family: ClientException
    }
    try {
      const out = await this.ecs.send(new RegisterTaskDefinitionCommand({ family, ...definition }));
      return out.taskDefinition!.taskDefinitionArn!;
    } catch (e) {
      throw awsError(e, `register task definition ${family}`);
    }
  }

  private handle(id: string): Handle {
    const h = this.handles.get(id);
    if (!h) throw new RunnerError("OTHER_ERROR", `unknown ECS job task handle ${id}`);
    return h;
  }

  async start(id: string): Promise<void> {
    const h = this.handle(id);
    const { spec, resources } = h;
    const placement = runTaskPlacement(resources, this.opts.gpuCapacityProvider);
    const env = spec.env.map((e) => ({ name: e.slice(0, e.indexOf("=")), value: e.slice(e.indexOf("=") + 1) }));
    const jobId = spec.labels["jobworkerp.job_id"];
    let out;
    try {
      out = await this.ecs.send(
        new RunTaskCommand({
          cluster: this.opts.cluster,
          taskDefinition: h.taskDefinitionArn,
          count: 1,
          ...placement,
          startedBy: jobId ? `jobworkerp-job-${jobId}` : "jobworkerp",
          networkConfiguration: {
            awsvpcConfiguration: {
              subnets: this.opts.subnets,
              securityGroups: this.opts.securityGroups,
              assignPublicIp: this.opts.assignPublicIp ? "ENABLED" : "DISABLED",
            },
          },
          overrides: {
            containerOverrides: [{ name: JOB_CONTAINER, command: spec.cmd.length ? spec.cmd : undefined, environment: env.length ? env : undefined }],
          },
        }),
      );
    } catch (e) {
      throw awsError(e, `run a task of ${spec.image}`);
    }
    const task = out.tasks?.[0];
    if (!task?.taskArn) {
      // e.g. RESOURCE:GPU (no capacity right now) or AGENT: worth a retry later
      const why = out.failures?.map((f) => [f.reason, f.detail].filter(Boolean).join(" ")).join("; ") || "no task was started";
      throw new RunnerError("ERROR_AND_RETRY", `ECS: cannot run a task of ${spec.image}: ${why}`);
    }
    h.taskArn = task.taskArn;
  }

  async wait(id: string): Promise<number> {
    const h = this.handle(id);
    const poll = this.opts.poll ?? { initialMs: 1000, maxMs: 10_000 };
    let delay = poll.initialMs;
    for (;;) {
      if (h.removed) throw new RunnerError("ERROR_AND_RETRY", "the ECS task was stopped");
      let task: Task | undefined;
      let missing = false;
      try {
        const out = await this.ecs.send(new DescribeTasksCommand({ cluster: this.opts.cluster, tasks: [h.taskArn!] }));
        task = out.tasks?.[0];
        missing = !task && !!out.failures?.some((f) => f.reason === "MISSING");
      } catch (e) {
        const err = awsError(e, `describe task ${h.taskArn}`);
        if (err.kind === "FATAL_ERROR") throw err; // a throttled or failed call is simply polled again
      }
      if (missing) throw new RunnerError("ERROR_AND_RETRY", `ECS task ${h.taskArn} is gone (DescribeTasks: MISSING)`);
      if (task?.lastStatus === "STOPPED") {
        h.stopped = task;
        return taskExit(task);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(poll.maxMs, delay * 2);
    }
  }

  async logs(id: string): Promise<Output> {
    const h = this.handle(id);
    const taskId = h.taskArn!.split("/").pop()!;
    const stream = `${LOG_STREAM_PREFIX}/${JOB_CONTAINER}/${taskId}`;
    let text = await this.readStream(stream);
    if (text === "" && (this.opts.logSettleMs ?? 2000) > 0) {
      await new Promise((r) => setTimeout(r, this.opts.logSettleMs ?? 2000));
      text = await this.readStream(stream);
    }
    return { stdout: Buffer.from(text, "utf8"), stderr: Buffer.alloc(0) };
  }

  /** The whole stream, oldest first ("" when it does not exist: the task wrote nothing). */
  private async readStream(stream: string): Promise<string> {
    const lines: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 1000; page++) {
      let out;
      try {
        out = await this.logsClient.send(
          new GetLogEventsCommand({ logGroupName: this.opts.logGroup, logStreamName: stream, startFromHead: true, nextToken: token }),
        );
      } catch (e) {
        if ((e as Error).name === "ResourceNotFoundException") return "";
        throw awsError(e, `read the task's log stream ${stream}`);
      }
      for (const ev of out.events ?? []) lines.push(ev.message ?? "");
      // the forward token stays the same once the end of the stream is reached
      if (!out.nextForwardToken || out.nextForwardToken === token || !out.events?.length) break;
      token = out.nextForwardToken;
    }
    return lines.length ? `${lines.join("\n")}\n` : "";
  }

  async exec(): Promise<ExecOutcome> {
    throw new RunnerError("FATAL_ERROR", "the ECS backend cannot exec into a running task");
  }

  async remove(id: string): Promise<void> {
    const h = this.handles.get(id);
    if (!h) return;
    h.removed = true;
    this.handles.delete(id);
    if (!h.taskArn || h.stopped) return;
    await this.ecs.send(
      new StopTaskCommand({ cluster: this.opts.cluster, task: h.taskArn, reason: "stopped by jobworkerp: the job timed out or was cancelled" }),
    );
  }

  async isRunning(id: string): Promise<boolean> {
    const h = this.handles.get(id);
    return !!h?.taskArn && !h.stopped;
  }

  async imageCommand(): Promise<{ entrypoint: string[]; cmd: string[] }> {
    throw new RunnerError("FATAL_ERROR", "the ECS backend cannot inspect images");
  }
}
