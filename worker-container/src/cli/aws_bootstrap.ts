// `jobworkerp aws bootstrap`: creates the AWS resources of a deployment through the APIs, from the same channels
// file and names (adapters/aws/resources.ts) the CDK app uses, against AWS_ENDPOINT_URL (moto server,
// LocalStack) or a real account. Idempotent: a second run changes nothing and says what exists.
import { readFile } from "node:fs/promises";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { createAwsClients, type AwsClientConfig } from "../adapters/aws/clients.js";
import { ensureJobStateTable, ensureQueueWithDlq, type Provisioned } from "../adapters/aws/provision.js";
import { createSchedulerClient } from "../adapters/aws/ops_clients.js";
import { channelQueues } from "../adapters/aws/resources.js";
import { ensureClockSchedules } from "../adapters/aws/schedules.js";
import type { SchedulerClient } from "@aws-sdk/client-scheduler";
import { ChannelConfigError, parseChannelsConfig, type ChannelSpec } from "../core/channel_config.js";
import { DEFAULT_CHANNEL } from "../core/workers.js";
import { ConfigError, loadAwsResourcesConfig } from "./config.js";

export interface BootstrapTarget {
  sqs: SQSClient;
  dynamo: DynamoDBClient;
  resourcePrefix: string;
  channels: ChannelSpec[];
  /** The clock's schedules, when the functions they fire exist (deployed by hand or by `cdklocal`). */
  schedules?: { scheduler: SchedulerClient; dispatchFunctionArn: string; metricsFunctionArn?: string; roleArn: string };
}

/** The default channel always gets queues (with the defaults) when the file does not name it. */
export function withDefaultChannel(specs: ChannelSpec[]): ChannelSpec[] {
  if (specs.some((s) => s.name === DEFAULT_CHANNEL)) return specs;
  return [...parseChannelsConfig({ channels: [{ name: DEFAULT_CHANNEL }] }), ...specs];
}

/** Every queue (+ DLQ with redrive) of every channel and sub-queue. */
export async function bootstrapQueues(t: BootstrapTarget): Promise<Provisioned[]> {
  const out: Provisioned[] = [];
  for (const spec of t.channels) {
    const queues = channelQueues(t.resourcePrefix, spec);
    const done = await Promise.all(queues.map((q) => ensureQueueWithDlq(t.sqs, { name: q.name, dlqName: q.dlqName, maxReceiveCount: spec.maxReceiveCount })));
    out.push(...done.flat());
  }
  return out;
}

/**
 * Schedules that move due jobs from the store into the queues (EventBridge Scheduler → dispatch Lambda) and publish
 * the backlog metrics, when their functions are given (without them, run the processes with AWS_LOCAL_FUNCTIONS=true).
 */
export async function bootstrapSchedules(t: BootstrapTarget): Promise<Provisioned[]> {
  if (!t.schedules) return [];
  const done = await ensureClockSchedules(t.schedules.scheduler, { prefix: t.resourcePrefix, ...t.schedules });
  return done.map((d) => ({ kind: "schedule", ...d }));
}

/** Table, queues and schedules, in that order. */
export async function bootstrapAws(t: BootstrapTarget): Promise<Provisioned[]> {
  const table = await ensureJobStateTable(t.dynamo, t.resourcePrefix);
  return [table, ...(await bootstrapQueues(t)), ...(await bootstrapSchedules(t))];
}

async function readChannels(path: string): Promise<ChannelSpec[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(`channels file '${path}' cannot be read (${(e as Error).message}): set CHANNELS_CONFIG or run where channels.json is`);
  }
  try {
    return parseChannelsConfig(JSON.parse(text));
  } catch (e) {
    if (e instanceof ChannelConfigError || e instanceof SyntaxError) throw new ConfigError(`channels file '${path}': ${e.message}`);
    throw e;
  }
}

const USAGE = `usage: jobworkerp aws bootstrap [--dispatch-function-arn ARN --scheduler-role-arn ARN [--metrics-function-arn ARN]]
  Creates the job-state table (TTL, status index), one SQS queue per channel, sub-queue and priority with its
  dead-letter queue (redrive after the channel's maxReceiveCount, SSE on), from the channels file; with the
  function ARNs, also the EventBridge Scheduler schedules that fire them every minute (created or updated).
  Without deployed functions, run fronts with AWS_LOCAL_FUNCTIONS=true: they run the clock and the DLQ recorder.
  Environment: AWS_ENDPOINT_URL (a local endpoint: moto server, LocalStack), AWS_REGION, AWS_RESOURCE_PREFIX
  (default jobworkerp), CHANNELS_CONFIG (default ./channels.json); credentials from the AWS SDK's chain.`;

/** `jobworkerp aws <command>`. */
export async function runAwsCommand(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (!cmd || cmd === "-h" || cmd === "--help" || rest.includes("--help") || rest.includes("-h")) {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  const flags = parseFlags(rest);
  if (cmd !== "bootstrap" || !flags) {
    console.error(`unknown: jobworkerp aws ${args.join(" ")}\n${USAGE}`);
    return 2;
  }
  const dispatchArn = flags.get("--dispatch-function-arn");
  const roleArn = flags.get("--scheduler-role-arn");
  if (!dispatchArn !== !roleArn || (flags.has("--metrics-function-arn") && !dispatchArn)) {
    console.error(`--dispatch-function-arn and --scheduler-role-arn go together (and --metrics-function-arn needs them)\n${USAGE}`);
    return 2;
  }
  const cfg = loadAwsResourcesConfig();
  const channels = withDefaultChannel(await readChannels(cfg.channelsConfigPath));
  const clientCfg: AwsClientConfig = { region: cfg.aws.region, endpointUrl: cfg.aws.endpointUrl };
  const clients = createAwsClients(clientCfg);
  try {
    console.log(`bootstrapping '${cfg.aws.resourcePrefix}' at ${cfg.aws.endpointUrl ?? `AWS ${cfg.aws.region}`} from ${cfg.channelsConfigPath} (${channels.length} channels)`);
    const scheduler = dispatchArn ? createSchedulerClient(clientCfg) : undefined;
    const schedules = scheduler && dispatchArn && roleArn ? { scheduler, dispatchFunctionArn: dispatchArn, roleArn, metricsFunctionArn: flags.get("--metrics-function-arn") } : undefined;
    const done = await bootstrapAws({ sqs: clients.sqs, dynamo: clients.dynamo, resourcePrefix: cfg.aws.resourcePrefix, channels, schedules }).finally(() => scheduler?.destroy());
    for (const p of done) console.log(`${p.created ? "created" : "exists "}  ${p.kind.padEnd(8)} ${p.name}`);
    const created = done.filter((p) => p.created).length;
    console.log(`${created} created, ${done.length - created} already there`);
    return 0;
  } finally {
    clients.destroy();
  }
}

const FLAGS = ["--dispatch-function-arn", "--metrics-function-arn", "--scheduler-role-arn"];

/** `--name value` pairs of the known flags; undefined on anything else. */
function parseFlags(args: string[]): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    const [name, value] = [args[i], args[i + 1]];
    if (!FLAGS.includes(name) || !value || value.startsWith("--") || out.has(name)) return undefined;
    out.set(name, value);
  }
  return out;
}
