// The one place that reads process.env: turns jobworkerp's environment variables into a typed config.
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChannelConcurrency } from "../core/dispatcher.js";
import { DEFAULT_CHANNEL } from "../core/workers.js";
import type { ObservabilityConfig } from "../observability/setup.js";

export type Role = "all-in-one" | "front" | "worker";

export interface Config {
  role: Role;
  grpcAddr: string;
  storageType: "Standalone" | "Scalable";
  sqliteUrl: string;
  /** Scalable: MySQL URL (MYSQL_URL, or built from MYSQL_HOST/PORT/USER/PASSWORD/DBNAME) and Redis URL. */
  mysqlUrl: string;
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
  const channels = names.map((name, i) => {
    const c = concs[i] === undefined ? 1 : Number(concs[i]);
    if (!Number.isInteger(c) || c < 1) throw new ConfigError(`concurrency of channel '${name}' must be an integer >= 1, got '${concs[i]}'`);
    return { name, concurrency: c };
  });
  const defaultConcurrency = int(env, "WORKER_DEFAULT_CONCURRENCY", 8);
  const disabled = (env.WORKER_DEFAULT_CHANNEL_DISABLED ?? "").toLowerCase() === "true";
  if (!disabled && defaultConcurrency > 0 && !names.includes(DEFAULT_CHANNEL)) {
    channels.unshift({ name: DEFAULT_CHANNEL, concurrency: defaultConcurrency });
  }
  return channels;
}

export function loadConfig(role: Role, env: NodeJS.ProcessEnv = process.env): Config {
  const storage = (env.STORAGE_TYPE ?? "Standalone").toLowerCase();
  if (storage !== "standalone" && storage !== "scalable") throw new ConfigError(`STORAGE_TYPE must be Standalone or Scalable, got '${env.STORAGE_TYPE}'`);
  return {
    role,
    workflow: workflowConfig(env),
    grpcAddr: env.GRPC_ADDR ?? "0.0.0.0:9000",
    storageType: storage === "scalable" ? "Scalable" : "Standalone",
    sqliteUrl: env.SQLITE_URL ?? "sqlite://jobworkerp.sqlite3?mode=rwc",
    mysqlUrl: env.MYSQL_URL ?? mysqlUrlFromParts(env),
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

function workflowConfig(env: NodeJS.ProcessEnv): WorkflowConfig {
  const secrets: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith("WORKFLOW_SECRET_") && v !== undefined) secrets[k.slice(16)] = v;
  const sec = Number(env.WORKFLOW_TASK_DEFAULT_TIMEOUT_SEC ?? 3600);
  if (!Number.isFinite(sec) || sec <= 0) throw new ConfigError(`WORKFLOW_TASK_DEFAULT_TIMEOUT_SEC must be a positive number, got '${env.WORKFLOW_TASK_DEFAULT_TIMEOUT_SEC}'`);
  return { allowPrivateUrls: (env.WORKFLOW_ALLOW_PRIVATE_URLS ?? "").toLowerCase() === "true", defaultTimeoutMs: sec * 1000, secrets };
}
