// Channels, defined once (channels.json at the repo root, or the file CHANNELS_CONFIG names) and read by both the
// runtime (concurrency, sub-queue weights, AWS queue names, scale-from-zero bounds) and the CDK app (queues,
// services, GPU capacity, autoscaling). Pure: parsing and naming only; reading the file is the caller's job.
import { createHash } from "node:crypto";
import { Priority } from "../gen/jobworkerp/data/common_pb.js";
import { DEFAULT_CHANNEL } from "./workers.js";

export interface SubQueueSpec {
  /** Sub-queue name; workers send jobs to it with the channel `<channel>:<name>` (e.g. `inference:high`). */
  name: string;
  /** Share of the channel's leases while every sub-queue has work (e.g. 9 and 3 serve 3:1). */
  weight: number;
}

export interface ModelServerSpec {
  /** Image of an OpenAI-compatible server run as a sidecar of the channel's tasks, reached on localhost:port. */
  image: string;
  port: number;
}

export interface ChannelSpec {
  /** Channel name as workers name it (`__default_job_channel__` for the default channel). */
  name: string;
  /** Jobs one worker process (one ECS task) runs at once. */
  concurrency: number;
  /** GPUs per task; > 0 puts the channel's service on the GPU capacity provider. */
  gpu: number;
  /** ECS task size: CPU units (256 = 0.25 vCPU) and memory in MiB. */
  cpu: number;
  memoryMiB: number;
  /** Autoscaling bounds of the channel's worker service; minTasks 0 with scaleToZero lets it sleep when idle. */
  minTasks: number;
  maxTasks: number;
  scaleToZero: boolean;
  /** Jobs per running task the autoscaler aims for ((visible + in-flight messages) / running tasks). */
  targetBacklogPerTask: number;
  /** Deliveries before a message goes to the DLQ (SQS redrive maxReceiveCount). */
  maxReceiveCount: number;
  /** Weighted sub-queues served in proportion (empty: the channel is one queue). */
  subQueues: SubQueueSpec[];
  modelServer?: ModelServerSpec;
  /** AWS: EC2 instance type of a GPU channel's capacity (one task per instance; default g5.xlarge). */
  instanceType?: string;
  /** AWS: the DOCKER runner uses the instance's own Docker engine (socket mounted); only GPU (EC2) channels have one. */
  localDocker?: boolean;
}

export class ChannelConfigError extends Error {}

const DEFAULTS = { concurrency: 8, gpu: 0, cpu: 512, memoryMiB: 1024, minTasks: 1, maxTasks: 4, scaleToZero: false, targetBacklogPerTask: 16, maxReceiveCount: 5 };

/** Validate a parsed channels file: `{ "channels": [ { "name": ..., ... } ] }`. Defaults fill what is left out. */
export function parseChannelsConfig(raw: unknown): ChannelSpec[] {
  const list = (raw as { channels?: unknown } | null)?.channels;
  if (!Array.isArray(list) || list.length === 0) throw new ChannelConfigError("channels config: `channels` must be a non-empty array");
  const seen = new Set<string>();
  return list.map((entry, i) => {
    if (typeof entry !== "object" || entry === null) throw new ChannelConfigError(`channels[${i}] must be an object`);
    const e = entry as Record<string, unknown>;
    const where = `channels[${i}]`;
    const name = e.name;
    if (typeof name !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      throw new ChannelConfigError(`${where}.name must be 1-64 characters of A-Z a-z 0-9 _ . -, got ${JSON.stringify(name)}`);
    }
    if (seen.has(name)) throw new ChannelConfigError(`${where}: channel '${name}' is defined twice`);
    seen.add(name);
    const num = (key: keyof typeof DEFAULTS, min: number, max: number): number => {
      const v = e[key] ?? DEFAULTS[key];
      if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new ChannelConfigError(`${where}.${key} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
      return v;
    };
    const scaleToZero = e.scaleToZero ?? DEFAULTS.scaleToZero;
    if (typeof scaleToZero !== "boolean") throw new ChannelConfigError(`${where}.scaleToZero must be a boolean`);
    const spec: ChannelSpec = {
      name,
      concurrency: num("concurrency", 1, 10_000),
      gpu: num("gpu", 0, 16),
      cpu: num("cpu", 256, 16_384),
      memoryMiB: num("memoryMiB", 512, 122_880),
      minTasks: num("minTasks", 0, 1000),
      maxTasks: num("maxTasks", 1, 1000),
      scaleToZero,
      targetBacklogPerTask: num("targetBacklogPerTask", 1, 100_000),
      maxReceiveCount: num("maxReceiveCount", 1, 1000),
      subQueues: parseSubQueues(e.subQueues, where),
      modelServer: parseModelServer(e.modelServer, where),
      ...parseEc2Options(e, where),
    };
    if (spec.minTasks > spec.maxTasks) throw new ChannelConfigError(`${where}: minTasks (${spec.minTasks}) exceeds maxTasks (${spec.maxTasks})`);
    if (spec.scaleToZero && spec.minTasks !== 0) throw new ChannelConfigError(`${where}: scaleToZero needs minTasks 0`);
    if (spec.gpu === 0 && (spec.instanceType !== undefined || spec.localDocker)) {
      throw new ChannelConfigError(`${where}: instanceType and localDocker apply to GPU channels (gpu > 0), which run on EC2 instances`);
    }
    return spec;
  });
}

function parseSubQueues(raw: unknown, where: string): SubQueueSpec[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new ChannelConfigError(`${where}.subQueues must be an array of { name, weight }`);
  const names = new Set<string>();
  return raw.map((s, j) => {
    const { name, weight } = (s ?? {}) as Record<string, unknown>;
    if (typeof name !== "string" || !/^[A-Za-z0-9_-]{1,32}$/.test(name) || names.has(name)) {
      throw new ChannelConfigError(`${where}.subQueues[${j}].name must be a unique name of 1-32 characters A-Z a-z 0-9 _ -`);
    }
    if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 1 || weight > 1000) {
      throw new ChannelConfigError(`${where}.subQueues[${j}].weight must be an integer in 1..1000`);
    }
    names.add(name);
    return { name, weight };
  });
}

function parseModelServer(raw: unknown, where: string): ModelServerSpec | undefined {
  if (raw === undefined) return undefined;
  const { image, port } = (raw ?? {}) as Record<string, unknown>;
  if (typeof image !== "string" || !image || typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ChannelConfigError(`${where}.modelServer must be { image: string, port: 1..65535 }`);
  }
  return { image, port };
}

function parseEc2Options(e: Record<string, unknown>, where: string): Pick<ChannelSpec, "instanceType" | "localDocker"> {
  const out: Pick<ChannelSpec, "instanceType" | "localDocker"> = {};
  if (e.instanceType !== undefined) {
    if (typeof e.instanceType !== "string" || !/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(e.instanceType)) {
      throw new ChannelConfigError(`${where}.instanceType must be an EC2 instance type such as g5.xlarge, got ${JSON.stringify(e.instanceType)}`);
    }
    out.instanceType = e.instanceType;
  }
  if (e.localDocker !== undefined) {
    if (typeof e.localDocker !== "boolean") throw new ChannelConfigError(`${where}.localDocker must be a boolean`);
    out.localDocker = e.localDocker;
  }
  return out;
}

/** The channel a job of `channel` (maybe `<channel>:<sub-queue>`) belongs to, and its sub-queue if any. */
export function splitSubQueue(channel: string): { channel: string; subQueue?: string } {
  const i = channel.lastIndexOf(":");
  return i > 0 ? { channel: channel.slice(0, i), subQueue: channel.slice(i + 1) } : { channel };
}

const PRIORITY_SUFFIX: Record<Priority, string> = { [Priority.HIGH]: "high", [Priority.MEDIUM]: "medium", [Priority.LOW]: "low" };
export const PRIORITIES = [Priority.HIGH, Priority.MEDIUM, Priority.LOW] as const;

/**
 * SQS queue name of a channel (or `channel:sub-queue`) and priority: `<prefix>-<channel>-<priority>`, 80
 * characters at most, of the characters SQS allows. A channel name that had to be changed to fit (`:` of a
 * sub-queue, the default channel's length) gets a short hash so two channels never share a queue.
 */
export function sqsQueueName(prefix: string, channel: string, priority: Priority, dlq = false): string {
  const suffix = `-${PRIORITY_SUFFIX[priority] ?? "medium"}${dlq ? "-dlq" : ""}`;
  const base = channel === DEFAULT_CHANNEL ? "default" : channel;
  let safe = base.replace(/[^A-Za-z0-9_-]/g, "-");
  const room = 80 - prefix.length - 1 - suffix.length;
  if (safe !== base || safe.length > room) {
    const hash = createHash("sha256").update(channel).digest("hex").slice(0, 8);
    safe = `${safe.slice(0, Math.max(1, room - 9))}-${hash}`;
  }
  return `${prefix}-${safe}${suffix}`;
}

/** The spec of a channel (sub-queue suffix ignored), or undefined when the config does not name it. */
export function findChannel(specs: readonly ChannelSpec[], channel: string): ChannelSpec | undefined {
  const base = splitSubQueue(channel).channel;
  return specs.find((s) => s.name === base || s.name === channel);
}
