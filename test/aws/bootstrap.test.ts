// `jobworkerp aws bootstrap` as a user runs it (the CLI in a child process) against the run's moto server: every
// queue + DLQ of channels.json with redrive and SSE, the job-state table with TTL and its status index; a
// second run creates nothing; bad input is a clear error.
import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DescribeTableCommand, DescribeTimeToLiveCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { afterAll, describe, expect, it } from "vitest";
import { GetScheduleCommand } from "@aws-sdk/client-scheduler";
import { createSchedulerClient } from "../../worker-container/src/adapters/aws/ops_clients.js";
import { channelQueues, JOB_STATE_TABLE } from "../../worker-container/src/adapters/aws/resources.js";
import { parseChannelsConfig } from "../../worker-container/src/core/channel_config.js";
import { awsTestConfig, newResourcePrefix, testAwsClients } from "../helpers/aws.js";
import { LOCAL_AWS_CREDENTIALS } from "../helpers/moto.js";
import { readFileSync } from "node:fs";

const clients = testAwsClients();
afterAll(() => clients.destroy());

function bootstrap(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; out: string; err: string }> {
  const cfg = awsTestConfig();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/jobworkerp.mjs", "aws", "bootstrap", ...args], {
      env: {
        PATH: process.env.PATH,
        AWS_ENDPOINT_URL: cfg.endpointUrl,
        AWS_REGION: cfg.region,
        AWS_ACCESS_KEY_ID: LOCAL_AWS_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_AWS_CREDENTIALS.secretAccessKey,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, out, err }));
  });
}

describe("jobworkerp aws bootstrap", () => {
  it("creates every queue, DLQ and the table from channels.json; a second run creates nothing", async () => {
    const prefix = newResourcePrefix("b");
    const specs = parseChannelsConfig(JSON.parse(readFileSync("channels.json", "utf8")));
    const queues = specs.flatMap((s) => channelQueues(prefix, s).map((q) => ({ ...q, maxReceiveCount: s.maxReceiveCount })));

    const first = await bootstrap({ AWS_RESOURCE_PREFIX: prefix, CHANNELS_CONFIG: "channels.json" });
    expect(first.code, first.err).toBe(0);
    for (const q of queues) {
      expect(first.out).toMatch(new RegExp(`created\\s+queue\\s+${q.name}\\n`));
      expect(first.out).toMatch(new RegExp(`created\\s+queue\\s+${q.dlqName}\\n`));
    }
    expect(first.out).toMatch(new RegExp(`created\\s+table\\s+${JOB_STATE_TABLE.name(prefix)}`));

    // the queues as the runtime needs them: redrive to their DLQ after the channel's maxReceiveCount, SSE on
    const gpu = queues.find((q) => q.channel === "docker-gpu")!;
    const url = (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: gpu.name }))).QueueUrl!;
    const attrs = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }))).Attributes!;
    const redrive = JSON.parse(attrs.RedrivePolicy!) as { deadLetterTargetArn: string; maxReceiveCount: number | string };
    expect(Number(redrive.maxReceiveCount)).toBe(3);
    expect(redrive.deadLetterTargetArn).toMatch(new RegExp(`:${gpu.dlqName}$`));
    expect(attrs.SqsManagedSseEnabled).toBe("true");
    expect(queues.some((q) => q.channel === "llm:high")).toBe(true); // sub-queues get queues of their own

    const table = (await clients.dynamo.send(new DescribeTableCommand({ TableName: JOB_STATE_TABLE.name(prefix) }))).Table!;
    expect(table.GlobalSecondaryIndexes?.map((i) => i.IndexName)).toEqual([JOB_STATE_TABLE.statusIndex.name]);
    const ttl = await clients.dynamo.send(new DescribeTimeToLiveCommand({ TableName: JOB_STATE_TABLE.name(prefix) }));
    expect(ttl.TimeToLiveDescription?.AttributeName).toBe(JOB_STATE_TABLE.ttlAttribute);

    const second = await bootstrap({ AWS_RESOURCE_PREFIX: prefix, CHANNELS_CONFIG: "channels.json" });
    expect(second.code, second.err).toBe(0);
    expect(second.out).not.toMatch(/^created/m);
    expect(second.out).toContain(`0 created, ${queues.length * 2 + 1} already there`);
  });

  it("a channels file without the default channel still gets the default channel's queues", async () => {
    const prefix = newResourcePrefix("d");
    const dir = await mkdtemp(join(tmpdir(), "bootstrap-"));
    const file = join(dir, "channels.json");
    await writeFile(file, JSON.stringify({ channels: [{ name: "only" }] }));
    const r = await bootstrap({ AWS_RESOURCE_PREFIX: prefix, CHANNELS_CONFIG: file });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`created\\s+queue\\s+${prefix}-default-medium\\n`));
    expect(r.out).toMatch(new RegExp(`created\\s+queue\\s+${prefix}-only-low-dlq\\n`));
  });

  it("with the functions' ARNs, also creates (then updates) the clock's schedules; half the flags is a usage error", async () => {
    const prefix = newResourcePrefix("s");
    const dir = await mkdtemp(join(tmpdir(), "bootstrap-"));
    const file = join(dir, "channels.json");
    await writeFile(file, JSON.stringify({ channels: [{ name: "only" }] }));
    const fn = (name: string) => `arn:aws:lambda:us-east-1:123456789012:function:${prefix}-${name}`;
    const args = ["--dispatch-function-arn", fn("dispatch"), "--scheduler-role-arn", "arn:aws:iam::123456789012:role/scheduler", "--metrics-function-arn", fn("metrics")];
    const first = await bootstrap({ AWS_RESOURCE_PREFIX: prefix, CHANNELS_CONFIG: file }, args);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(new RegExp(`created\\s+schedule\\s+${prefix}-dispatch-clock\\n`));
    expect(first.out).toMatch(new RegExp(`created\\s+schedule\\s+${prefix}-backlog-metrics\\n`));
    const scheduler = createSchedulerClient(awsTestConfig());
    try {
      const s = await scheduler.send(new GetScheduleCommand({ Name: `${prefix}-dispatch-clock` }));
      expect(s.ScheduleExpression).toBe("rate(1 minute)");
      expect(s.Target?.Arn).toBe(fn("dispatch"));
    } finally {
      scheduler.destroy();
    }
    const again = await bootstrap({ AWS_RESOURCE_PREFIX: prefix, CHANNELS_CONFIG: file }, args);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(new RegExp(`exists\\s+schedule\\s+${prefix}-dispatch-clock\\n`));

    const half = await bootstrap({ AWS_RESOURCE_PREFIX: prefix, CHANNELS_CONFIG: file }, ["--dispatch-function-arn", fn("dispatch")]);
    expect(half.code).toBe(2);
    expect(half.err).toMatch(/go together/);
    const unknown = await bootstrap({ AWS_RESOURCE_PREFIX: prefix, CHANNELS_CONFIG: file }, ["--bogus", "x"]);
    expect(unknown.code).toBe(2);
  });

  it("a missing or invalid channels file is a clear error", async () => {
    const missing = await bootstrap({ AWS_RESOURCE_PREFIX: newResourcePrefix("m"), CHANNELS_CONFIG: "/nonexistent/channels.json" });
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/channels file '\/nonexistent\/channels.json' cannot be read/);
    const dir = await mkdtemp(join(tmpdir(), "bootstrap-"));
    const file = join(dir, "bad.json");
    await writeFile(file, JSON.stringify({ channels: [{ name: "bad name!" }] }));
    const bad = await bootstrap({ AWS_RESOURCE_PREFIX: newResourcePrefix("m"), CHANNELS_CONFIG: file });
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/channels\[0\]\.name must be/);
  });
});
