// The DOCKER runner's ECS backend against the emulator's ECS and CloudWatch Logs APIs (moto server).
//
// What is real and what is simulated: every call (RegisterTaskDefinition, RunTask, DescribeTasks, StopTask,
// GetLogEvents) goes to moto, and the assertions read back what moto recorded. No container can run here, so moto
// plays the task: it moves a task one lifecycle step (RUNNING → DEACTIVATING → STOPPING → DEPROVISIONING →
// STOPPED) per DescribeTasks call and reports exit code 0 for its container once STOPPED. The task's output is
// simulated too: the test writes the log events into the task's awslogs stream (`job/job/<task id>`) itself, as
// the awslogs driver would. Exit codes other than 0 cannot come from moto; `taskExit` is tested on task records.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import {
  CreateClusterCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  ECSClient,
  ListTasksCommand,
  RegisterContainerInstanceCommand,
  type Task,
} from "@aws-sdk/client-ecs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEcsClient, createLogsClient } from "../../worker-container/src/adapters/aws/ops_clients.js";
import { DockerArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/docker_args_pb.js";
import { DockerResultSchema } from "../../worker-container/src/gen/jobworkerp/runner/docker_result_pb.js";
import { DockerRunnerSettingsSchema } from "../../worker-container/src/gen/jobworkerp/runner/docker_settings_pb.js";
import { EcsEngine, runTaskPlacement, taskExit, type EcsEngineOptions } from "../../worker-container/src/runners/docker/ecs_engine.js";
import { dockerRunner } from "../../worker-container/src/runners/docker/index.js";
import { RunnerError, type RunContext } from "../../worker-container/src/runners/runner.js";
import { defaultSubnet, launchInstance, localAws, uniqueName } from "./support.js";

const GPU_PROVIDER = "gpu-capacity";
let ecs: ECSClient;
let logs: CloudWatchLogsClient;
let cluster: string;
let logGroup: string;
let subnet: string;

/** A channel "gpu" with one GPU per task; everything else is a small Fargate task. */
const resourcesOf = (channel: string | undefined) => (channel === "gpu" ? { cpu: 1024, memoryMiB: 2048, gpu: 1 } : { cpu: 256, memoryMiB: 512, gpu: 0 });

function engine(poll: { initialMs: number; maxMs: number }): EcsEngine {
  const opts: EcsEngineOptions = {
    cluster,
    subnets: [subnet],
    securityGroups: ["sg-jobs"],
    executionRoleArn: "arn:aws:iam::123456789012:role/exec",
    taskRoleArn: "arn:aws:iam::123456789012:role/task",
    logGroup,
    region: "us-east-1",
    gpuCapacityProvider: GPU_PROVIDER,
    familyPrefix: "jwtest",
    resourcesOf,
    poll,
    logSettleMs: 10_000, // the log writer below usually wins; when not, this re-read catches it
  };
  return new EcsEngine(ecs, logs, opts);
}

const settings = (s: Parameters<typeof create<typeof DockerRunnerSettingsSchema>>[1]) => toBinary(DockerRunnerSettingsSchema, create(DockerRunnerSettingsSchema, s));
const args = (a: Parameters<typeof create<typeof DockerArgsSchema>>[1]) => toBinary(DockerArgsSchema, create(DockerArgsSchema, a));
const ctx = (jobId: bigint, channel: string, signal = new AbortController().signal): RunContext => ({ signal, using: "run", jobId, metadata: {}, channel });

/** A run awaited later: a failure before that must not surface as an unhandled rejection. */
function observed<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** The task RunTask started for a job (ListTasks by startedBy: it does not advance moto's lifecycle). */
async function taskOfJob(jobId: bigint, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await ecs.send(new ListTasksCommand({ cluster, startedBy: `jobworkerp-job-${jobId}` }));
    if (out.taskArns?.length) return out.taskArns[0];
    if (Date.now() > deadline) throw new Error(`no task started for job ${jobId}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function describeTask(arn: string): Promise<Task> {
  return (await ecs.send(new DescribeTasksCommand({ cluster, tasks: [arn] }))).tasks![0];
}

/** What the awslogs driver would do for the task's container. */
async function writeTaskLog(taskArn: string, lines: string[]): Promise<void> {
  const stream = `job/job/${taskArn.split("/").pop()}`;
  await logs.send(new CreateLogStreamCommand({ logGroupName: logGroup, logStreamName: stream }));
  const t = Date.now();
  await logs.send(new PutLogEventsCommand({ logGroupName: logGroup, logStreamName: stream, logEvents: lines.map((message, i) => ({ message, timestamp: t + i })) }));
}

beforeAll(async () => {
  ecs = createEcsClient(localAws());
  logs = createLogsClient(localAws());
  cluster = uniqueName("jobs");
  logGroup = `/jobworkerp/${uniqueName("jobs")}`;
  subnet = await defaultSubnet();
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  await logs.send(new CreateLogGroupCommand({ logGroupName: logGroup }));
  // GPU tasks are placed on EC2 container instances (moto ignores the capacity provider strategy and places them on
  // any registered instance).
  await ecs.send(new RegisterContainerInstanceCommand({ cluster, instanceIdentityDocument: JSON.stringify({ instanceId: await launchInstance() }) }));
});

afterAll(() => {
  ecs?.destroy();
  logs?.destroy();
});

describe("ECS backend of the DOCKER runner", () => {
  it("runs a job as a Fargate task of its image with its command and env, waits for it, returns its exit code and log output", async () => {
    const runner = dockerRunner({ engine: engine({ initialMs: 50, maxMs: 200 }) });
    const inst = await runner.create(settings({ fromImage: "public.ecr.aws/docker/library/busybox:1.36", env: ["FROM_SETTINGS=1", "SHARED=settings"] }));
    const jobId = 7001n;
    const running = observed(inst.run(args({ cmd: ["sh", "-c", "echo hello; echo $GREETING"], env: ["GREETING=hi", "SHARED=args"], workingDir: "/tmp" }), ctx(jobId, "batch")));
    const taskArn = await taskOfJob(jobId);
    await writeTaskLog(taskArn, ["hello", "hi"]);
    const result = fromBinary(DockerResultSchema, await running);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe("hello\nhi\n");

    const task = await describeTask(taskArn);
    expect(task.lastStatus).toBe("STOPPED");
    expect(task.launchType).toBe("FARGATE");
    const override = task.overrides!.containerOverrides![0];
    expect(override.name).toBe("job");
    expect(override.command).toEqual(["sh", "-c", "echo hello; echo $GREETING"]);
    expect(override.environment).toEqual(
      expect.arrayContaining([
        { name: "FROM_SETTINGS", value: "1" },
        { name: "SHARED", value: "args" },
        { name: "GREETING", value: "hi" },
      ]),
    );
    expect(override.environment).toHaveLength(3);
    const td = (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: task.taskDefinitionArn }))).taskDefinition!;
    expect(td.family).toMatch(/^jwtest-docker-[0-9a-f]{16}$/);
    expect(td.requiresCompatibilities).toEqual(["FARGATE"]);
    expect(td.networkMode).toBe("awsvpc");
    expect(td.executionRoleArn).toBe("arn:aws:iam::123456789012:role/exec");
    const c = td.containerDefinitions![0];
    expect(c.image).toBe("public.ecr.aws/docker/library/busybox:1.36");
    expect(c.workingDirectory).toBe("/tmp");
    expect(c.resourceRequirements ?? []).toEqual([]);
    expect(c.logConfiguration).toEqual({
      logDriver: "awslogs",
      options: { "awslogs-group": logGroup, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "job" },
    });
  });

  it("gives a GPU channel's task its GPUs (resourceRequirements) on EC2 capacity and reuses the task definition", async () => {
    const eng = engine({ initialMs: 50, maxMs: 200 });
    const runner = dockerRunner({ engine: eng });
    const inst = await runner.create(settings({ fromImage: "nvidia/cuda:12.4.0-base-ubuntu22.04" }));
    const defs: string[] = [];
    for (const jobId of [7101n, 7102n]) {
      const running = observed(inst.run(args({ cmd: ["nvidia-smi"], env: [`JOB=${jobId}`] }), ctx(jobId, "gpu")));
      const taskArn = await taskOfJob(jobId);
      await writeTaskLog(taskArn, [`gpu job ${jobId}`]);
      expect(fromBinary(DockerResultSchema, await running).stdout).toBe(`gpu job ${jobId}\n`);
      const task = await describeTask(taskArn);
      expect(task.overrides!.containerOverrides![0].command).toEqual(["nvidia-smi"]);
      expect(task.overrides!.containerOverrides![0].environment).toEqual([{ name: "JOB", value: String(jobId) }]);
      expect(task.launchType ?? "").not.toBe("FARGATE");
      defs.push(task.taskDefinitionArn!);
    }
    expect(defs[1]).toBe(defs[0]); // registered once
    const td = (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: defs[0] }))).taskDefinition!;
    expect(td.requiresCompatibilities).toEqual(["EC2"]);
    expect(td.cpu).toBe("1024");
    expect(td.memory).toBe("2048");
    expect(td.containerDefinitions![0].resourceRequirements).toEqual([{ type: "GPU", value: "1" }]);
    expect(td.containerDefinitions![0].image).toBe("nvidia/cuda:12.4.0-base-ubuntu22.04");
  });

  it("places GPU tasks through the GPU capacity provider and the others on Fargate (moto does not record the strategy)", () => {
    expect(runTaskPlacement({ cpu: 256, memoryMiB: 512, gpu: 0 }, GPU_PROVIDER)).toEqual({ launchType: "FARGATE" });
    expect(runTaskPlacement({ cpu: 1024, memoryMiB: 2048, gpu: 2 }, GPU_PROVIDER)).toEqual({ capacityProviderStrategy: [{ capacityProvider: GPU_PROVIDER, weight: 1 }] });
    expect(runTaskPlacement({ cpu: 1024, memoryMiB: 2048, gpu: 1 }, undefined)).toEqual({ launchType: "EC2" });
  });

  it("stops the task when the job is cancelled", async () => {
    // slow polling: moto would otherwise play the task to its end before the test cancels it
    const runner = dockerRunner({ engine: engine({ initialMs: 1500, maxMs: 1500 }) });
    const inst = await runner.create(settings({ fromImage: "busybox:1.36" }));
    const jobId = 7201n;
    const controller = new AbortController();
    const running = observed(inst.run(args({ cmd: ["sleep", "3600"] }), ctx(jobId, "batch", controller.signal)));
    const taskArn = await taskOfJob(jobId);
    controller.abort(new RunnerError("ERROR_AND_RETRY", "job cancelled by the test"));
    await expect(running).rejects.toThrow("job cancelled by the test");
    const task = await describeTask(taskArn);
    expect(task.desiredStatus).toBe("STOPPED");
    expect(task.lastStatus).toBe("STOPPED");
    expect(task.stoppedReason).toMatch(/stopped by jobworkerp/);
  });

  it("stops the task when timeout_sec runs out", async () => {
    const runner = dockerRunner({ engine: engine({ initialMs: 1500, maxMs: 1500 }) });
    const inst = await runner.create(settings({ fromImage: "busybox:1.36" }));
    const jobId = 7301n;
    const running = observed(inst.run(args({ cmd: ["sleep", "3600"], timeoutSec: 1n }), ctx(jobId, "batch")));
    const taskArn = await taskOfJob(jobId);
    const err = await running.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RunnerError);
    expect((err as RunnerError).kind).toBe("ERROR_AND_RETRY");
    expect((err as Error).message).toMatch(/timed out after 1 s/);
    const task = await describeTask(taskArn);
    expect(task.desiredStatus).toBe("STOPPED");
    expect(task.stoppedReason).toMatch(/stopped by jobworkerp/);
  });

  it("refuses what a task on another host cannot have (volumes) before starting anything", async () => {
    const runner = dockerRunner({ engine: engine({ initialMs: 50, maxMs: 200 }) });
    const inst = await runner.create(settings({ fromImage: "busybox:1.36" }));
    const err = await inst.run(args({ cmd: ["true"], volumes: ["/data:/data"] }), ctx(7401n, "batch")).then(() => undefined, (e: unknown) => e);
    expect((err as RunnerError).kind).toBe("FATAL_ERROR");
    expect((err as Error).message).toMatch(/volumes .* not available on the ECS backend/);
    expect((await ecs.send(new ListTasksCommand({ cluster, startedBy: "jobworkerp-job-7401" }))).taskArns).toEqual([]);
  });
});

describe("taskExit (how a stopped task record ends a run)", () => {
  const stopped = (t: Partial<Task>): Task => ({ lastStatus: "STOPPED", taskArn: "arn:task/x", ...t });

  it("is the job container's exit code", () => {
    expect(taskExit(stopped({ containers: [{ name: "sidecar", exitCode: 9 }, { name: "job", exitCode: 3 }] }))).toBe(3);
    expect(taskExit(stopped({ containers: [{ name: "job", exitCode: 0 }] }))).toBe(0);
  });

  it("fails without retry when the image cannot be pulled, and with retry for other start failures", () => {
    const pull = () => taskExit(stopped({ stopCode: "TaskFailedToStart", stoppedReason: "CannotPullContainerError: pull image manifest has been retried 5 time(s): manifest unknown", containers: [{ name: "job" }] }));
    expect(pull).toThrow(RunnerError);
    expect(() => pull()).toThrow(/manifest unknown/);
    try {
      pull();
    } catch (e) {
      expect((e as RunnerError).kind).toBe("FATAL_ERROR");
    }
    try {
      taskExit(stopped({ stopCode: "SpotInterruption", stoppedReason: "Your Spot Task was interrupted.", containers: [{ name: "job" }] }));
      expect.fail("no exit code must throw");
    } catch (e) {
      expect((e as RunnerError).kind).toBe("ERROR_AND_RETRY");
      expect((e as Error).message).toMatch(/SpotInterruption: Your Spot Task was interrupted/);
    }
  });
});
