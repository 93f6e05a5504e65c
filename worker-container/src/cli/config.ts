// The one place that reads process.env: turns jobworkerp's environment variables into a typed config.
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChannelConfigError, findChannel, parseChannelsConfig, splitSubQueue, type ChannelSpec, type SubQueueSpec } from "../core/channel_config.js";
import type { ChannelConcurrency } from "../core/dispatcher.js";
import { weightedMembers } from "../core/weighted.js";
import { DEFAULT_CHANNEL } from "../core/workers.js";
import type { ObservabilityConfig } from "../observability/setup.js";

export type Role = "all-in-one" | "front" | "worker";

export interface Config {
  role: Role;
  grpcAddr: string;
  storageType: "Standalone" | "Scalable" | "Aws";
  /** STORAGE_TYPE=Aws: SQS queues and DynamoDB job state (MySQL or PostgreSQL and Redis as in Scalable). */
  aws: AwsRuntimeConfig;
  sqliteUrl: string;
  /** Scalable: MySQL URL (MYSQL_URL, or built from MYSQL_HOST/PORT/USER/PASSWORD/DBNAME) and Redis URL. */
  mysqlUrl: string;
  /** POSTGRES_URL: the store is PostgreSQL instead of SQLite (Standalone) or MySQL (Scalable). */
  postgresUrl?: string;
  redisUrl: string;
  /** Namespace of every Redis key, so several deployments can share one Redis. */
  redisKeyPrefix: string;
  /** Scalable: put WITH_BACKUP jobs Redis has lost back into the queue at start-up. */
  restoreAtStartup: boolean;
  /** Channels this process runs jobs on (the default channel included unless disabled). */
  channels: ChannelConcurrency[];
  authToken?: string;
  /** USE_GRPC_WEB=true: also serve gRPC-Web (HTTP/1.1) on grpcAddr; CORS origins from GRPC_WEB_ALLOWED_ORIGINS. */
  grpcWeb?: { allowedOrigins: string[] };
  fetchIntervalMs: number;
  expireJobResultMs: number;
  maxMessageBytes: number;
  /** How long a queue lease holds without renewal (a killed worker's jobs come back after it). */
  leaseMs: number;
  instanceHeartbeatMs: number;
  instanceTimeoutMs: number;
  logLevel: string;
  /** Register the NOOP runner (benchmarks and tests only). */
  enableNoopRunner: boolean;
  /** LLM runner, `genai` settings: bearer token of the OpenAI-compatible API (LLM_API_KEY, else OPENAI_API_KEY). */
  llmApiKey?: string;
  /** Directory of plugin modules (JS/TS ES modules) registered as PLUGIN runners at start (PLUGINS_RUNNER_DIR). */
  plugins: { dir?: string; loadTimeoutMs: number; createTimeoutMs: number };
  /** TOML file of MCP servers that become MCP_SERVER runners (MCP_CONFIG, default mcp-settings.toml; `explicit` when set). */
  mcpConfig: { path: string; explicit: boolean };
  /** Docker Engine API for the DOCKER runner (DOCKER_HOST: unix:///path or tcp://host:port; Podman's service works too). */
  dockerHost: string;
  /** DOCKER_BACKEND (local | ecs) and the ECS_* settings of job tasks. */
  dockerBackend: DockerBackendConfig;
  /** PYTHON_COMMAND: directory of the shared virtual environments (PYTHON_VENV_DIR). */
  pythonVenvDir: string;
  /** SLACK_POST_MESSAGE: Slack Web API base URL (SLACK_API_BASE_URL). */
  slackApiBaseUrl: string;
  /** Traces and metrics: OTLP_ADDR (OTLP/HTTP collector), PROMETHEUS_ADDR (GET /metrics); both off by default. */
  observability: ObservabilityConfig;
  /** MCP server mode (workers and runners as MCP tools): the front's Streamable HTTP endpoint and `jobworkerp mcp`. */
  mcp: McpServerConfig;
  /** WORKFLOW runner. */
  workflow: WorkflowConfig;
}

export interface WorkflowConfig {
  /** WORKFLOW_ALLOW_PRIVATE_URLS=true: workflow_url may point into private networks (loopback, 10/8, …). */
  allowPrivateUrls: boolean;
  /** WORKFLOW_TASK_DEFAULT_TIMEOUT_SEC (3600): timeout of a workflow without its own. */
  defaultTimeoutMs: number;
  /** WORKFLOW_SECRET_<UPPER_SNAKE_NAME>: values of the secrets workflows declare under use.secrets. */
  secrets: Record<string, string>;
}

export interface McpServerConfig {
  /** MCP_ENABLED: the front (all-in-one, front) also serves MCP over Streamable HTTP. */
  enabled: boolean;
  /** MCP_ADDR host:port (default 127.0.0.1:8000, as jobworkerp-rs) and MCP_PATH (default /mcp). */
  addr: string;
  path: string;
  /** MCP_SET_NAME: offer only the members of this function set. */
  setName?: string;
  /** MCP_EXCLUDE_RUNNER / MCP_EXCLUDE_WORKER: leave runners / workers out of the tools. */
  excludeRunner: boolean;
  excludeWorker: boolean;
  /** MCP_TIMEOUT_SEC: timeout of the job a tool call runs (default 300). */
  timeoutMs: number;
}

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, def: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name} must be an integer >= ${min}, got '${raw}'`);
  return n;
}

export function parseChannels(env: NodeJS.ProcessEnv): ChannelConcurrency[] {
  const names = (env.WORKER_CHANNELS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const concs = (env.WORKER_CHANNEL_CONCURRENCIES ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (concs.length > names.length) throw new ConfigError("WORKER_CHANNEL_CONCURRENCIES has more entries than WORKER_CHANNELS");
  // CHANNELS_CONFIG: a channel named there without a concurrency here gets the file's (and its sub-queues)
  const specs = loadChannelSpecs(env) ?? [];
  const channels: ChannelConcurrency[] = names.map((name, i) => {
    const c = concs[i] === undefined ? (findChannel(specs, name)?.concurrency ?? 1) : Number(concs[i]);
    if (!Number.isInteger(c) || c < 1) throw new ConfigError(`concurrency of channel '${name}' must be an integer >= 1, got '${concs[i]}'`);
    return { name, concurrency: c };
  });
  const defaultConcurrency = int(env, "WORKER_DEFAULT_CONCURRENCY", 8);
  const disabled = (env.WORKER_DEFAULT_CHANNEL_DISABLED ?? "").toLowerCase() === "true";
  if (!disabled && defaultConcurrency > 0 && !names.includes(DEFAULT_CHANNEL)) {
    channels.unshift({ name: DEFAULT_CHANNEL, concurrency: defaultConcurrency });
  }
  const weights = parseChannelWeights(env.WORKER_CHANNEL_WEIGHTS, channels.map((c) => c.name));
  for (const ch of channels) {
    // a process that serves `inference` leases from its sub-queues by weight; one serving `inference:high` does not
    const subs = weights.get(ch.name) ?? specs.find((s) => s.name === ch.name)?.subQueues ?? [];
    if (subs.length > 0) ch.subQueues = weightedMembers(ch.name, subs);
  }
  return channels;
}

/** CHANNELS_CONFIG: the channels file (like channels.json at the repo root), or undefined when unset. */
export function loadChannelSpecs(env: NodeJS.ProcessEnv): ChannelSpec[] | undefined {
  const path = env.CHANNELS_CONFIG;
  if (!path) return undefined;
  try {
    return parseChannelsConfig(JSON.parse(readFileSync(path, "utf8")));
  } catch (e) {
    if (e instanceof ChannelConfigError || e instanceof SyntaxError || (e as NodeJS.ErrnoException).code) {
      throw new ConfigError(`CHANNELS_CONFIG '${path}': ${(e as Error).message}`);
    }
    throw e;
  }
}

/**
 * WORKER_CHANNEL_WEIGHTS=inference:high=9,inference:low=3: sub-queue weights without a channels file (for the
 * channels it names, it replaces the file's sub-queues). Channels this process does not serve are ignored.
 */
export function parseChannelWeights(raw: string | undefined, served: string[]): Map<string, SubQueueSpec[]> {
  const out = new Map<string, SubQueueSpec[]>();
  for (const entry of (raw ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = entry.lastIndexOf("=");
    const { channel, subQueue } = splitSubQueue(eq > 0 ? entry.slice(0, eq) : entry);
    const weight = Number(entry.slice(eq + 1));
    if (eq <= 0 || !subQueue) throw new ConfigError(`WORKER_CHANNEL_WEIGHTS: '${entry}' must look like <channel>:<sub-queue>=<weight>`);
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(subQueue)) throw new ConfigError(`WORKER_CHANNEL_WEIGHTS: sub-queue name '${subQueue}' must be 1-32 characters of A-Z a-z 0-9 _ -`);
    if (!Number.isInteger(weight) || weight < 1 || weight > 1000) throw new ConfigError(`WORKER_CHANNEL_WEIGHTS: weight of '${channel}:${subQueue}' must be an integer in 1..1000, got '${entry.slice(eq + 1)}'`);
    if (!served.includes(channel)) continue; // one env may serve processes of other channels: not ours, ignored
    const subs = out.get(channel) ?? [];
    if (subs.some((s) => s.name === subQueue)) throw new ConfigError(`WORKER_CHANNEL_WEIGHTS: '${channel}:${subQueue}' is given twice`);
    subs.push({ name: subQueue, weight });
    out.set(channel, subs);
  }
  return out;
}

export function loadConfig(role: Role, env: NodeJS.ProcessEnv = process.env): Config {
  const storage = (env.STORAGE_TYPE ?? "Standalone").toLowerCase();
  if (storage !== "standalone" && storage !== "scalable" && storage !== "aws") throw new ConfigError(`STORAGE_TYPE must be Standalone, Scalable or Aws, got '${env.STORAGE_TYPE}'`);
  return {
    role,
    workflow: workflowConfig(env),
    grpcAddr: env.GRPC_ADDR ?? "0.0.0.0:9000",
    storageType: storage === "scalable" ? "Scalable" : storage === "aws" ? "Aws" : "Standalone",
    aws: awsRuntimeConfig(env),
    sqliteUrl: env.SQLITE_URL ?? "sqlite://jobworkerp.sqlite3?mode=rwc",
    mysqlUrl: env.MYSQL_URL ?? mysqlUrlFromParts(env),
    postgresUrl: postgresUrl(env),
    redisUrl: redisUrl(env),
    redisKeyPrefix: env.REDIS_KEY_PREFIX || "jobworkerp",
    restoreAtStartup: (env.STORAGE_RESTORE_AT_STARTUP ?? "").toLowerCase() === "true",
    channels: parseChannels(env),
    authToken: env.AUTH_TOKEN || undefined,
    grpcWeb: (env.USE_GRPC_WEB ?? "").toLowerCase() === "true" ? { allowedOrigins: allowedOrigins(env) } : undefined,
    fetchIntervalMs: int(env, "JOB_QUEUE_FETCH_INTERVAL", 1000, 10),
    expireJobResultMs: int(env, "JOB_QUEUE_EXPIRE_JOB_RESULT_SECONDS", 3600) * 1000,
    maxMessageBytes: int(env, "GRPC_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, 1024),
    leaseMs: int(env, "JOB_QUEUE_LEASE_MS", 30_000, 100),
    instanceHeartbeatMs: int(env, "WORKER_INSTANCE_HEARTBEAT_INTERVAL_SEC", 30, 1) * 1000,
    instanceTimeoutMs: int(env, "WORKER_INSTANCE_TIMEOUT_SEC", 90, 1) * 1000,
    logLevel: env.LOG_LEVEL ?? "info",
    enableNoopRunner: (env.JOBWORKERP_ENABLE_NOOP_RUNNER ?? "").toLowerCase() === "true",
    llmApiKey: env.LLM_API_KEY || env.OPENAI_API_KEY || undefined,
    plugins: {
      dir: env.PLUGINS_RUNNER_DIR || undefined,
      loadTimeoutMs: int(env, "PLUGIN_LOAD_TIMEOUT_SECS", 10, 1) * 1000,
      createTimeoutMs: int(env, "PLUGIN_INSTANTIATE_TIMEOUT_SECS", 5, 1) * 1000,
    },
    mcpConfig: { path: env.MCP_CONFIG || "mcp-settings.toml", explicit: !!env.MCP_CONFIG },
    dockerHost: env.DOCKER_HOST || "unix:///var/run/docker.sock",
    dockerBackend: loadDockerBackend(env),
    pythonVenvDir: env.PYTHON_VENV_DIR || join(tmpdir(), "jobworkerp-python-venvs"),
    slackApiBaseUrl: httpUrl(env, "SLACK_API_BASE_URL", "https://slack.com/api"),
    observability: observabilityConfig(env),
    mcp: mcpServerConfig(env),
  };
}

function mcpServerConfig(env: NodeJS.ProcessEnv): McpServerConfig {
  const flag = (name: string) => (env[name] ?? "").toLowerCase() === "true";
  const addr = env.MCP_ADDR || "127.0.0.1:8000";
  if (!/^(\[[^\]]+\]|[^\s:]*):\d{1,5}$/.test(addr)) throw new ConfigError(`MCP_ADDR must be host:port, got '${addr}'`);
  const path = env.MCP_PATH || "/mcp";
  if (!path.startsWith("/")) throw new ConfigError(`MCP_PATH must start with '/', got '${path}'`);
  return {
    enabled: flag("MCP_ENABLED"),
    addr,
    path,
    setName: env.MCP_SET_NAME || undefined,
    excludeRunner: flag("MCP_EXCLUDE_RUNNER"),
    excludeWorker: flag("MCP_EXCLUDE_WORKER"),
    timeoutMs: int(env, "MCP_TIMEOUT_SEC", 300, 1) * 1000,
  };
}

/** GRPC_WEB_ALLOWED_ORIGINS: comma-separated origins (scheme://host[:port]) or `*` (default). */
function allowedOrigins(env: NodeJS.ProcessEnv): string[] {
  const list = (env.GRPC_WEB_ALLOWED_ORIGINS || "*").split(",").map((s) => s.trim()).filter(Boolean);
  for (const o of list) {
    if (o !== "*" && !(URL.canParse(o) && new URL(o).origin === o.replace(/\/+$/, ""))) {
      throw new ConfigError(`GRPC_WEB_ALLOWED_ORIGINS entries must be * or origins like https://admin.example:8080, got '${o}'`);
    }
  }
  return list.length ? list : ["*"];
}

function postgresUrl(env: NodeJS.ProcessEnv): string | undefined {
  const url = env.POSTGRES_URL;
  if (!url) return undefined;
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(`POSTGRES_URL must start with postgres:// or postgresql://, got '${url.split("//")[0]}…'`);
  return url;
}

function mysqlUrlFromParts(env: NodeJS.ProcessEnv): string {
  const u = new URL("mysql://localhost");
  u.hostname = env.MYSQL_HOST ?? "127.0.0.1";
  u.port = env.MYSQL_PORT ?? "3306";
  u.username = encodeURIComponent(env.MYSQL_USER ?? "mysql");
  u.password = encodeURIComponent(env.MYSQL_PASSWORD ?? "mysql");
  u.pathname = `/${env.MYSQL_DBNAME ?? "test"}`;
  return u.toString();
}

function redisUrl(env: NodeJS.ProcessEnv): string {
  const u = new URL(env.REDIS_URL ?? "redis://127.0.0.1:6379");
  if (env.REDIS_USERNAME) u.username = encodeURIComponent(env.REDIS_USERNAME);
  if (env.REDIS_PASSWORD) u.password = encodeURIComponent(env.REDIS_PASSWORD);
  return u.toString();
}

function httpUrl(env: NodeJS.ProcessEnv, name: string, def: string): string {
  const raw = env[name] || def;
  if (!URL.canParse(raw) || !/^https?:$/.test(new URL(raw).protocol)) throw new ConfigError(`${name} must be an http(s) URL, got '${raw}'`);
  return raw;
}

/** OTLP_ADDR: an http(s) URL (a bare host:port means http://host:port); PROMETHEUS_ADDR: host:port. */
function observabilityConfig(env: NodeJS.ProcessEnv): ObservabilityConfig {
  let otlpAddr = env.OTLP_ADDR?.trim() || undefined;
  if (otlpAddr && !/^[a-z]+:\/\//i.test(otlpAddr)) otlpAddr = `http://${otlpAddr}`;
  if (otlpAddr && !(URL.canParse(otlpAddr) && /^https?:$/.test(new URL(otlpAddr).protocol))) {
    throw new ConfigError(`OTLP_ADDR must be an http(s) URL of an OTLP/HTTP collector (e.g. http://127.0.0.1:4318), got '${env.OTLP_ADDR}'`);
  }
  const prom = env.PROMETHEUS_ADDR?.trim() || undefined;
  const m = prom ? /^(\[[^\]]+\]|[^\s:]*):(\d{1,5})$/.exec(prom) : undefined;
  if (prom && (!m || Number(m[2]) > 65535)) throw new ConfigError(`PROMETHEUS_ADDR must be host:port (e.g. 0.0.0.0:9464), got '${prom}'`);
  return {
    otlpAddr,
    prometheus: m ? { host: m[1].replace(/^\[|\]$/g, "") || "0.0.0.0", port: Number(m[2]) } : undefined,
    serviceName: env.OTEL_SERVICE_NAME || "jobworkerp",
    spanExportDelayMs: int(env, "OTEL_BSP_SCHEDULE_DELAY", 5000, 1),
    metricExportIntervalMs: int(env, "OTEL_METRIC_EXPORT_INTERVAL", 60_000, 100),
  };
}

/** The client commands' environment (`jobworkerp <group> <command>`): JOBWORKERP_AUTH_TOKEN, sent as jobworkerp-auth. */
export function loadClientConfig(env: NodeJS.ProcessEnv = process.env): { authToken?: string } {
  return { authToken: env.JOBWORKERP_AUTH_TOKEN || undefined };
}

/** The container health probe's target: the loopback address of GRPC_ADDR's port (default 127.0.0.1:9000). */
export function healthCheckAddr(env: NodeJS.ProcessEnv = process.env): string {
  const port = /:(\d{1,5})$/.exec(env.GRPC_ADDR ?? "")?.[1] ?? "9000";
  return `127.0.0.1:${port}`;
}

function workflowConfig(env: NodeJS.ProcessEnv): WorkflowConfig {
  const secrets: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith("WORKFLOW_SECRET_") && v !== undefined) secrets[k.slice(16)] = v;
  const sec = Number(env.WORKFLOW_TASK_DEFAULT_TIMEOUT_SEC ?? 3600);
  if (!Number.isFinite(sec) || sec <= 0) throw new ConfigError(`WORKFLOW_TASK_DEFAULT_TIMEOUT_SEC must be a positive number, got '${env.WORKFLOW_TASK_DEFAULT_TIMEOUT_SEC}'`);
  return { allowPrivateUrls: (env.WORKFLOW_ALLOW_PRIVATE_URLS ?? "").toLowerCase() === "true", defaultTimeoutMs: sec * 1000, secrets };
}

// ---------------------------------------------------------------- AWS shape: DOCKER on ECS, the Lambda functions

/** DOCKER runner backend: `local` (default, the Docker Engine API at DOCKER_HOST) or `ecs` (one ECS task per job). */
export interface DockerBackendConfig {
  backend: "local" | "ecs";
  /** DOCKER_BACKEND=ecs: where and how job tasks run. */
  ecs?: EcsJobTasksConfig;
}

export interface EcsJobTasksConfig {
  /** ECS_CLUSTER */
  cluster: string;
  /** ECS_SUBNETS, ECS_SECURITY_GROUPS: comma-separated ids (awsvpc networking of job tasks). */
  subnets: string[];
  securityGroups: string[];
  /** ECS_ASSIGN_PUBLIC_IP=true: give job tasks a public IP (subnets without a NAT). */
  assignPublicIp: boolean;
  /** ECS_TASK_EXECUTION_ROLE_ARN (pulls the image, writes the logs); ECS_TASK_ROLE_ARN (optional: the job's own AWS role). */
  executionRoleArn: string;
  taskRoleArn?: string;
  /** ECS_LOG_GROUP: CloudWatch Logs group of the job tasks (awslogs), where the runner reads their output. */
  logGroup: string;
  /** ECS_GPU_CAPACITY_PROVIDER: capacity provider of tasks on GPU channels (else the EC2 launch type). */
  gpuCapacityProvider?: string;
  /** CHANNELS_CONFIG: a job task gets its channel's cpu, memoryMiB and gpu (channels it does not name: 512/1024, no GPU). */
  channels: ChannelSpec[];
  /** AWS_REGION, AWS_ENDPOINT_URL (a local endpoint), AWS_RESOURCE_PREFIX (task definition families). */
  region: string;
  endpointUrl?: string;
  resourcePrefix: string;
}

const list = (raw: string | undefined) => (raw ?? "").split(",").map((s) => s.trim()).filter(Boolean);

export function loadDockerBackend(env: NodeJS.ProcessEnv = process.env): DockerBackendConfig {
  const backend = (env.DOCKER_BACKEND || "local").toLowerCase();
  if (backend === "local") return { backend: "local" };
  if (backend !== "ecs") throw new ConfigError(`DOCKER_BACKEND must be local or ecs, got '${env.DOCKER_BACKEND}'`);
  const need = (name: string) => {
    const v = env[name]?.trim();
    if (!v) throw new ConfigError(`DOCKER_BACKEND=ecs needs ${name}`);
    return v;
  };
  const subnets = list(need("ECS_SUBNETS"));
  return {
    backend: "ecs",
    ecs: {
      cluster: need("ECS_CLUSTER"),
      subnets,
      securityGroups: list(env.ECS_SECURITY_GROUPS),
      assignPublicIp: (env.ECS_ASSIGN_PUBLIC_IP ?? "").toLowerCase() === "true",
      executionRoleArn: need("ECS_TASK_EXECUTION_ROLE_ARN"),
      taskRoleArn: env.ECS_TASK_ROLE_ARN?.trim() || undefined,
      logGroup: need("ECS_LOG_GROUP"),
      gpuCapacityProvider: env.ECS_GPU_CAPACITY_PROVIDER?.trim() || undefined,
      channels: loadChannelSpecs(env) ?? [],
      ...awsBase(env),
    },
  };
}

function awsBase(env: NodeJS.ProcessEnv) {
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1",
    endpointUrl: env.AWS_ENDPOINT_URL || undefined,
    resourcePrefix: env.AWS_RESOURCE_PREFIX || "jobworkerp",
  };
}

/** The Lambda functions' settings (functions/deps.ts). */
export interface FunctionConfig {
  mysqlUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  /** AWS_REGION (set by Lambda), AWS_ENDPOINT_URL (a local endpoint: moto, LocalStack), AWS_RESOURCE_PREFIX. */
  aws: { region: string; endpointUrl?: string; resourcePrefix: string };
  /** CHANNELS_CONFIG, or the file's content in CHANNELS_CONFIG_JSON (one is required): queue names, redrive counts, bounds. */
  channels: ChannelSpec[];
  /** ECS_CLUSTER of the worker services: running tasks for BacklogPerTask and the dispatcher's scale-from-zero nudge. */
  ecsCluster?: string;
  /** DISPATCH_HORIZON_SEC (75): a dispatch tick queues what is due within this window (schedule period + margin, <= 900). */
  dispatchHorizonMs: number;
  expireJobResultMs: number;
  logLevel: string;
}

export function loadFunctionConfig(env: NodeJS.ProcessEnv = process.env): FunctionConfig {
  const channels = env.CHANNELS_CONFIG_JSON ? inlineChannelSpecs(env.CHANNELS_CONFIG_JSON) : loadChannelSpecs(env);
  if (!channels) throw new ConfigError("CHANNELS_CONFIG must name the channels file, or CHANNELS_CONFIG_JSON hold its content (as the CDK app deployed it)");
  const horizon = int(env, "DISPATCH_HORIZON_SEC", 75, 1);
  if (horizon > 900) throw new ConfigError(`DISPATCH_HORIZON_SEC must be at most 900 (SQS's longest delay), got ${horizon}`);
  return {
    mysqlUrl: env.MYSQL_URL ?? mysqlUrlFromParts(env),
    redisUrl: redisUrl(env),
    redisKeyPrefix: env.REDIS_KEY_PREFIX || "jobworkerp",
    aws: awsBase(env),
    channels,
    ecsCluster: env.ECS_CLUSTER?.trim() || undefined,
    dispatchHorizonMs: horizon * 1000,
    expireJobResultMs: int(env, "JOB_QUEUE_EXPIRE_JOB_RESULT_SECONDS", 3600) * 1000,
    logLevel: env.LOG_LEVEL ?? "info",
  };
}

/** CHANNELS_CONFIG_JSON: the channels file's content inline (Lambda functions, where shipping a file is awkward). */
function inlineChannelSpecs(text: string): ChannelSpec[] {
  try {
    return parseChannelsConfig(JSON.parse(text));
  } catch (e) {
    if (e instanceof ChannelConfigError || e instanceof SyntaxError) throw new ConfigError(`CHANNELS_CONFIG_JSON: ${e.message}`);
    throw e;
  }
}

/** AWS resources of one deployment: endpoint, name prefix and the channels file their queues come from. */
export interface AwsResourcesConfig {
  /** AWS_REGION (or AWS_DEFAULT_REGION; default us-east-1), AWS_ENDPOINT_URL (a local endpoint: moto, LocalStack), AWS_RESOURCE_PREFIX (default jobworkerp). */
  aws: { region: string; endpointUrl?: string; resourcePrefix: string };
  /** CHANNELS_CONFIG, else ./channels.json. */
  channelsConfigPath: string;
}

/** `jobworkerp aws bootstrap` (credentials come from the AWS SDK's own chain: env, profile, role). */
export function loadAwsResourcesConfig(env: NodeJS.ProcessEnv = process.env): AwsResourcesConfig {
  const prefix = env.AWS_RESOURCE_PREFIX || "jobworkerp";
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(prefix)) throw new ConfigError(`AWS_RESOURCE_PREFIX must be 1-40 characters of A-Z a-z 0-9 _ -, got '${prefix}'`);
  return { aws: awsBase(env), channelsConfigPath: env.CHANNELS_CONFIG || "channels.json" };
}

/** The containers' side of STORAGE_TYPE=Aws. */
export interface AwsRuntimeConfig {
  /** AWS_REGION, AWS_ENDPOINT_URL (a local endpoint: moto, LocalStack), AWS_RESOURCE_PREFIX (queue and table names). */
  region: string;
  endpointUrl?: string;
  resourcePrefix: string;
  /** CHANNELS_CONFIG: redrive counts and scale-from-zero bounds (channels it does not name use the defaults). */
  channels: ChannelSpec[];
  /** ECS_CLUSTER of the worker services: the front nudges a channel's service up from zero tasks. */
  ecsCluster?: string;
  /**
   * AWS_LOCAL_FUNCTIONS=true: run what EventBridge Scheduler and the Lambdas do in a deployment inside these
   * processes (the clock under the Redis leader lock, a poller of the dead-letter queues feeding the recorder),
   * for local endpoints, where schedules never fire and no Lambda runs.
   */
  localFunctions: boolean;
  /** AWS_CREATE_MISSING_QUEUES=true: a channel's queues are created on first use (local endpoints, tests). */
  createMissingQueues: boolean;
}

function awsRuntimeConfig(env: NodeJS.ProcessEnv): AwsRuntimeConfig {
  const flag = (name: string) => (env[name] ?? "").toLowerCase() === "true";
  return {
    ...awsBase(env),
    channels: (env.STORAGE_TYPE ?? "").toLowerCase() === "aws" ? (loadChannelSpecs(env) ?? []) : [],
    ecsCluster: env.ECS_CLUSTER?.trim() || undefined,
    localFunctions: flag("AWS_LOCAL_FUNCTIONS"),
    createMissingQueues: flag("AWS_CREATE_MISSING_QUEUES"),
  };
}
