// Scale-from-zero nudges against the emulator's ECS API (moto server): services are created with the names the
// CDK app gives them (workerServiceName), and the assertions read their desired counts back.
import { CreateClusterCommand, CreateServiceCommand, DescribeServicesCommand, ECSClient, RegisterTaskDefinitionCommand, UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workerServiceName } from "../../worker-container/src/adapters/aws/resources.js";
import { createEcsClient } from "../../worker-container/src/adapters/aws/ops_clients.js";
import { ScaleFromZero } from "../../worker-container/src/adapters/aws/scale_from_zero.js";
import { create, toBinary } from "@bufbuild/protobuf";
import { MemoryJobQueue } from "../../worker-container/src/adapters/memory/job_queue.js";
import { MemoryJobState } from "../../worker-container/src/adapters/memory/job_state.js";
import { MemoryResultBus } from "../../worker-container/src/adapters/memory/result_bus.js";
import { openSqliteStore } from "../../worker-container/src/adapters/sqlite/index.js";
import { parseChannelsConfig } from "../../worker-container/src/core/channel_config.js";
import { Clock } from "../../worker-container/src/core/clock.js";
import { SnowflakeGenerator } from "../../worker-container/src/core/ids.js";
import { JobFront } from "../../worker-container/src/core/job_front.js";
import { JobOutcomes } from "../../worker-container/src/core/outcomes.js";
import { RunnerRegistry } from "../../worker-container/src/core/runners.js";
import { WorkerDefinitions } from "../../worker-container/src/core/workers.js";
import { CommandArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/command_args_pb.js";
import { WorkerDataSchema } from "../../worker-container/src/gen/jobworkerp/data/worker_pb.js";
import { JobRequestSchema } from "../../worker-container/src/gen/jobworkerp/service/job_pb.js";
import { commandRunner } from "../../worker-container/src/runners/command/index.js";
import { localAws, uniqueName } from "./support.js";

const PREFIX = "jwsfz";
const channels = parseChannelsConfig({
  channels: [
    { name: "batch", minTasks: 0, maxTasks: 3, scaleToZero: true },
    { name: "busy", minTasks: 0, maxTasks: 5, scaleToZero: true },
    { name: "llm", minTasks: 0, maxTasks: 2, scaleToZero: true, subQueues: [{ name: "high", weight: 3 }, { name: "low", weight: 1 }] },
    { name: "pushed", minTasks: 0, maxTasks: 1, scaleToZero: true },
    { name: "scheduled", minTasks: 0, maxTasks: 1, scaleToZero: true },
  ],
});
let ecs: ECSClient;
let cluster: string;

async function desiredCount(channel: string): Promise<number> {
  const out = await ecs.send(new DescribeServicesCommand({ cluster, services: [workerServiceName(PREFIX, channel)] }));
  return out.services![0].desiredCount!;
}

async function setDesired(channel: string, n: number) {
  await ecs.send(new UpdateServiceCommand({ cluster, service: workerServiceName(PREFIX, channel), desiredCount: n }));
}

beforeAll(async () => {
  ecs = createEcsClient(localAws());
  cluster = uniqueName("sfz");
  await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
  const td = await ecs.send(
    new RegisterTaskDefinitionCommand({ family: uniqueName("worker"), containerDefinitions: [{ name: "worker", image: "jobworkerp:test", memory: 512 }] }),
  );
  for (const [channel, desired] of [["batch", 0], ["busy", 3], ["llm", 0], ["pushed", 0], ["scheduled", 0]] as const) {
    await ecs.send(
      new CreateServiceCommand({ cluster, serviceName: workerServiceName(PREFIX, channel), taskDefinition: td.taskDefinition!.taskDefinitionArn, desiredCount: desired }),
    );
  }
});

afterAll(() => ecs?.destroy());

describe("scale-from-zero nudge", () => {
  it("wakes a sleeping service (0 running, 0 desired) to one task, at most once per window", async () => {
    let now = 1_000_000;
    const sfz = new ScaleFromZero(ecs, { cluster, prefix: PREFIX, channels, minIntervalMs: 15_000, now: () => now });
    expect(await desiredCount("batch")).toBe(0);
    expect(await sfz.check("batch")).toBe("scaled");
    expect(await desiredCount("batch")).toBe(1);

    // The service goes back to sleep; a nudge inside the window makes no call, so it stays asleep.
    await setDesired("batch", 0);
    now += 14_000;
    expect(await sfz.check("batch")).toBe("rate-limited");
    expect(await desiredCount("batch")).toBe(0);

    now += 1_000; // the window has passed
    expect(await sfz.check("batch")).toBe("scaled");
    expect(await desiredCount("batch")).toBe(1);
  });

  it("never touches a service that is awake: a desired count is never lowered", async () => {
    const sfz = new ScaleFromZero(ecs, { cluster, prefix: PREFIX, channels });
    expect(await sfz.check("busy")).toBe("awake");
    expect(await desiredCount("busy")).toBe(3);
  });

  it("nudges a sub-queue's channel service and ignores channels the config does not name", async () => {
    const sfz = new ScaleFromZero(ecs, { cluster, prefix: PREFIX, channels });
    expect(await sfz.check("llm:high")).toBe("scaled");
    expect(await desiredCount("llm")).toBe(1);
    expect(await sfz.check("llm:low")).toBe("rate-limited"); // same service, same window
    expect(await sfz.check("nowhere")).toBe("unknown-channel");
  });

  it("the fire-and-forget hook reports failures instead of throwing (a missing cluster)", async () => {
    const errors: [unknown, string][] = [];
    const sfz = new ScaleFromZero(ecs, { cluster: uniqueName("missing"), prefix: PREFIX, channels, onError: (e, ch) => errors.push([e, ch]) });
    expect(sfz.nudge("batch")).toBeUndefined();
    const deadline = Date.now() + 20_000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(errors).toHaveLength(1);
    expect(errors[0][1]).toBe("batch");
    expect((errors[0][0] as Error).name).toMatch(/ClusterNotFound/);
  });
});

describe("the front's hooks wake the channel a job is queued on", () => {
  it("JobFront (a job pushed to its queue) and the Clock (a due scheduled job) call the nudge with the job's channel", async () => {
    // an embedded core (SQLite, memory queue/state/bus) with the hooks wired as the AWS composition wires them
    const sfz = new ScaleFromZero(ecs, { cluster, prefix: PREFIX, channels });
    const runners = new RunnerRegistry([commandRunner]);
    const store = await openSqliteStore("sqlite://:memory:");
    await store.migrate(runners.builtinRows(Date.now()));
    const [queue, state, bus] = [new MemoryJobQueue(), new MemoryJobState(), new MemoryResultBus()];
    const workers = new WorkerDefinitions(store, runners, bus);
    const outcomes = new JobOutcomes(store, state, bus, new SnowflakeGenerator(1n), 60_000);
    const clock = new Clock({ store, queue, state, workers, onQueued: sfz.nudge }, { fetchIntervalMs: 1000, lookaheadMs: 5000, grabLeaseMs: 3_600_000 }, () => undefined);
    const front = new JobFront({ store, queue, state, bus, workers, runners, outcomes, ids: new SnowflakeGenerator(2n), clock }, { onJobQueued: sfz.nudge });
    try {
      const args = toBinary(CommandArgsSchema, create(CommandArgsSchema, { command: "true" }));
      for (const channel of ["pushed", "scheduled"]) {
        await workers.create(create(WorkerDataSchema, { name: `w-${channel}`, runnerId: { value: 1n }, channel }));
      }
      await front.enqueue(create(JobRequestSchema, { worker: { case: "workerName", value: "w-pushed" }, args }), {}, "unary", new AbortController().signal);
      await front.enqueue(
        create(JobRequestSchema, { worker: { case: "workerName", value: "w-scheduled" }, args, runAfterTime: BigInt(Date.now() + 2000) }),
        {},
        "unary",
        new AbortController().signal,
      );
      const deadline = Date.now() + 20_000;
      while ((await desiredCount("pushed")) + (await desiredCount("scheduled")) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await desiredCount("pushed")).toBe(1);
      expect(await desiredCount("scheduled")).toBe(1);
    } finally {
      await queue.close();
      await bus.close();
      await store.close();
    }
  });
});
