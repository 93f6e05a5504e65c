// The deployment's settings: CDK context (cdk.json, or `-c key=value`) with defaults that let `cdk synth` run
// offline with no arguments, plus the channels file the runtime reads (rule 6: channels are defined once).
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { parseChannelsConfig, type ChannelSpec } from "../worker-container/src/core/channel_config.js";
import { DEFAULT_RESOURCE_PREFIX } from "../worker-container/src/adapters/aws/resources.js";

export interface DeploymentConfig {
  /** AWS account; undefined leaves the stack account-agnostic (the CLI's credentials decide at deploy time). */
  account?: string;
  region: string;
  /** Availability zones, given (never looked up) so synth needs no AWS call. */
  availabilityZones: string[];
  /** Prefix of every named resource (queues, table, services, cluster) and of the stack name. */
  resourcePrefix: string;
  /** The channels file, relative to the repo root; copied into the image and the Lambdas as CHANNELS_CONFIG. */
  channelsFile: string;
  channels: ChannelSpec[];
  /** ACM certificate: the front's NLB listens with TLS on 443 (ALPN h2) instead of plaintext h2c on 9000. */
  certificateArn?: string;
  /** NLB reachable from the Internet (default: internal, reachable from the VPC and `clientCidrs`). */
  internetFacing: boolean;
  /** CIDRs allowed to reach the NLB listener (default: the VPC's CIDR). */
  clientCidrs: string[];
  natGateways: number;
  /** Interface VPC endpoints for SQS, ECR, CloudWatch Logs and Secrets Manager (gateway endpoints are always there). */
  interfaceEndpoints: boolean;
  /** Aurora MySQL Serverless v2 instead of an RDS MySQL instance. */
  auroraServerless: boolean;
  dbInstanceType: string;
  /** RDS instance in two AZs (Aurora: a reader in another AZ). */
  multiAz: boolean;
  deletionProtection: boolean;
  /** Keep the database (snapshot) and the job-state table when the stack is deleted. */
  retainData: boolean;
  cacheNodeType: string;
  cacheReplicas: number;
  front: { cpu: number; memoryMiB: number; minTasks: number; maxTasks: number };
  logRetentionDays: number;
  /** ApproximateAgeOfOldestMessage above this raises the queue's alarm. */
  oldestMessageAlarmSeconds: number;
  /** Alarm notifications to this address (SNS email subscription), when given. */
  alarmEmail?: string;
}

/** What `tryGetContext` gives: cdk.json values keep their JSON type, `-c` values arrive as strings. */
type Context = (key: string) => unknown;

export class DeploymentConfigError extends Error {}

function str(ctx: Context, key: string, def: string): string;
function str(ctx: Context, key: string, def?: string): string | undefined;
function str(ctx: Context, key: string, def?: string): string | undefined {
  const v = ctx(key);
  if (v === undefined || v === null || v === "") return def;
  if (typeof v !== "string") throw new DeploymentConfigError(`context '${key}' must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function bool(ctx: Context, key: string, def: boolean): boolean {
  const v = ctx(key);
  if (v === undefined || v === null || v === "") return def;
  if (v === true || v === "true") return true;
  if (v === false || v === "false") return false;
  throw new DeploymentConfigError(`context '${key}' must be true or false, got ${JSON.stringify(v)}`);
}

function int(ctx: Context, key: string, def: number, min: number, max: number): number {
  const v = ctx(key);
  if (v === undefined || v === null || v === "") return def;
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new DeploymentConfigError(`context '${key}' must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return n;
}

/** A list given as a JSON array (cdk.json) or a comma-separated string (`-c availabilityZones=a,b`). */
function list(ctx: Context, key: string): string[] | undefined {
  const v = ctx(key);
  if (v === undefined || v === null || v === "") return undefined;
  const items = Array.isArray(v) ? v : typeof v === "string" ? v.split(",") : undefined;
  if (!items || items.some((s) => typeof s !== "string")) throw new DeploymentConfigError(`context '${key}' must be a list of strings, got ${JSON.stringify(v)}`);
  return (items as string[]).map((s) => s.trim()).filter(Boolean);
}

/** The retention periods CloudWatch Logs accepts. */
const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

function retention(ctx: Context): number {
  const days = int(ctx, "logRetentionDays", 30, 1, 3653);
  if (!RETENTION_DAYS.includes(days)) throw new DeploymentConfigError(`context 'logRetentionDays' must be one of ${RETENTION_DAYS.join(", ")}, got ${days}`);
  return days;
}

export const REPO_ROOT = resolve(import.meta.dirname, "..");

/** Reads and validates the channels file (the same parser the runtime uses). */
export function loadChannels(file: string): ChannelSpec[] {
  const path = isAbsolute(file) ? file : resolve(REPO_ROOT, file);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new DeploymentConfigError(`channels file '${file}': ${(e as Error).message}`);
  }
  try {
    return parseChannelsConfig(raw);
  } catch (e) {
    throw new DeploymentConfigError(`channels file '${file}': ${(e as Error).message}`);
  }
}

/**
 * The deployment from CDK context. `env` supplies CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION (set by the CLI from the
 * caller's credentials) as fallbacks; context wins.
 */
export function deploymentConfig(ctx: Context, env: Record<string, string | undefined> = {}): DeploymentConfig {
  const region = str(ctx, "region") ?? env.CDK_DEFAULT_REGION ?? "us-east-1";
  const availabilityZones = list(ctx, "availabilityZones") ?? [`${region}a`, `${region}b`];
  if (availabilityZones.length < 2) throw new DeploymentConfigError("context 'availabilityZones' needs at least two zones (RDS and the NLB span two)");
  for (const az of availabilityZones) {
    if (!az.startsWith(region)) throw new DeploymentConfigError(`availability zone '${az}' is not in region '${region}'`);
  }
  const resourcePrefix = str(ctx, "resourcePrefix", DEFAULT_RESOURCE_PREFIX);
  // lower case: ElastiCache and ECS names; short: the longest derived names (queues, alarms) must fit their limits
  if (!/^[a-z][a-z0-9-]{1,23}$/.test(resourcePrefix)) {
    throw new DeploymentConfigError(`context 'resourcePrefix' must be 2-24 characters of a-z 0-9 - starting with a letter, got '${resourcePrefix}'`);
  }
  const channelsFile = str(ctx, "channelsFile", "channels.json");
  const account = str(ctx, "account") ?? env.CDK_DEFAULT_ACCOUNT;
  if (account !== undefined && !/^\d{12}$/.test(account)) throw new DeploymentConfigError(`context 'account' must be a 12-digit AWS account id, got '${account}'`);
  const certificateArn = str(ctx, "certificateArn");
  if (certificateArn !== undefined && !/^arn:aws[a-z-]*:acm:/.test(certificateArn)) throw new DeploymentConfigError(`context 'certificateArn' must be an ACM certificate ARN, got '${certificateArn}'`);
  const clientCidrs = list(ctx, "clientCidrs") ?? [];
  for (const c of clientCidrs) {
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(c)) throw new DeploymentConfigError(`context 'clientCidrs' entries must be IPv4 CIDRs, got '${c}'`);
  }
  const internetFacing = bool(ctx, "internetFacing", false);
  if (internetFacing && certificateArn === undefined) {
    throw new DeploymentConfigError("context 'internetFacing' needs 'certificateArn': the auth token must not cross the Internet in clear text");
  }
  const natGateways = int(ctx, "natGateways", 1, 0, availabilityZones.length);
  const interfaceEndpoints = bool(ctx, "interfaceEndpoints", true);
  if (natGateways === 0 && !interfaceEndpoints) {
    throw new DeploymentConfigError("context 'natGateways' 0 needs 'interfaceEndpoints': without either, tasks cannot reach ECR, SQS or CloudWatch Logs");
  }
  const alarmEmail = str(ctx, "alarmEmail");
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+$/.test(alarmEmail)) throw new DeploymentConfigError(`context 'alarmEmail' must be an e-mail address, got '${alarmEmail}'`);
  const front = {
    cpu: int(ctx, "frontCpu", 512, 256, 16_384),
    memoryMiB: int(ctx, "frontMemoryMiB", 1024, 512, 122_880),
    minTasks: int(ctx, "frontMinTasks", 2, 1, 100),
    maxTasks: int(ctx, "frontMaxTasks", 6, 1, 100),
  };
  if (front.minTasks > front.maxTasks) throw new DeploymentConfigError(`context 'frontMinTasks' (${front.minTasks}) exceeds 'frontMaxTasks' (${front.maxTasks})`);
  return {
    account,
    region,
    availabilityZones,
    resourcePrefix,
    channelsFile,
    channels: loadChannels(channelsFile),
    certificateArn,
    internetFacing,
    clientCidrs,
    natGateways,
    interfaceEndpoints,
    auroraServerless: bool(ctx, "auroraServerless", false),
    dbInstanceType: str(ctx, "dbInstanceType", "t4g.small"),
    multiAz: bool(ctx, "multiAz", false),
    deletionProtection: bool(ctx, "deletionProtection", true),
    retainData: bool(ctx, "retainData", true),
    cacheNodeType: str(ctx, "cacheNodeType", "cache.t4g.micro"),
    cacheReplicas: int(ctx, "cacheReplicas", 0, 0, 5),
    front,
    logRetentionDays: retention(ctx),
    oldestMessageAlarmSeconds: int(ctx, "oldestMessageAlarmSeconds", 900, 60, 1_209_600),
    alarmEmail,
  };
}
