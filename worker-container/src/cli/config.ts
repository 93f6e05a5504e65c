// The one place that reads process.env: turns jobworkerp's environment variables into a typed config.
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChannelConcurrency } from "../core/dispatcher.js";
import { DEFAULT_CHANNEL } from "../core/workers.js";

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
    grpcAddr: env.GRPC_ADDR ?? "0.0.0.0:9000",
    storageType: storage === "scalable" ? "Scalable" : "Standalone",
    sqliteUrl: env.SQLITE_URL ?? "sqlite://jobworkerp.sqlite3?mode=rwc",
    mysqlUrl: env.MYSQL_URL ?? mysqlUrlFromParts(env),
    redisUrl: redisUrl(env),
    redisKeyPrefix: env.REDIS_KEY_PREFIX || "jobworkerp",
    restoreAtStartup: (env.STORAGE_RESTORE_AT_STARTUP ?? "").toLowerCase() === "true",
    channels: parseChannels(env),
    authToken: env.AUTH_TOKEN || undefined,
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
  };
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
