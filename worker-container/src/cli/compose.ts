// Composition root: builds the object graph for a storage shape and a role, and owns start-up and shutdown order.
//   Standalone: memory queue/state/bus + SQLite; one all-in-one process.
//   Scalable:   Redis queue/state/bus/leader lock + MySQL; any number of `front` and `worker` processes.
import { clone, create } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { hostname, networkInterfaces } from "node:os";
import type { Logger } from "pino";
import { MemoryInstanceRegistry } from "../adapters/memory/instance_registry.js";
import { MemoryJobQueue } from "../adapters/memory/job_queue.js";
import { MemoryJobState } from "../adapters/memory/job_state.js";
import { MemoryLeaderLock } from "../adapters/memory/leader_lock.js";
import { MemoryResultBus } from "../adapters/memory/result_bus.js";
import { createAwsClients } from "../adapters/aws/clients.js";
import { DynamoJobState } from "../adapters/aws/dynamo_job_state.js";
import { LocalDeadLetterPoller } from "../adapters/aws/local_dead_letters.js";
import { createEcsClient } from "../adapters/aws/ops_clients.js";
import { ScaleFromZero } from "../adapters/aws/scale_from_zero.js";
import { pendingJobsFromState, SqsJobQueue, type SpillStore } from "../adapters/aws/sqs_job_queue.js";
import { openMysqlStore } from "../adapters/mysql/index.js";
import { openPostgresStore } from "../adapters/postgres/index.js";
import { RedisInstanceRegistry } from "../adapters/redis/instance_registry.js";
import { RedisJobQueue } from "../adapters/redis/job_queue.js";
import { RedisJobState } from "../adapters/redis/job_state.js";
import { RedisLeaderLock } from "../adapters/redis/leader_lock.js";
import { RedisResultBus } from "../adapters/redis/result_bus.js";
import { openSqliteStore } from "../adapters/sqlite/index.js";
import { Clock, ClockLeadership } from "../core/clock.js";
import { Dispatcher } from "../core/dispatcher.js";
import { DeadLetterRecorder } from "../core/dead_letters.js";
import { AppError } from "../core/errors.js";
import { nodeFromHostIp, SnowflakeGenerator } from "../core/ids.js";
import { JobFront } from "../core/job_front.js";
import { JobOutcomes } from "../core/outcomes.js";
import type { InstanceReporter } from "../core/instance_reporter.js";
import type { InstanceRegistry, JobQueue, JobState, LeaderLock, ResultBus, Store } from "../core/ports.js";
import { restoreJobs } from "../core/restore.js";
import { RunnerInstances } from "../core/runner_instances.js";
import { RunnerRegistry } from "../core/runners.js";
import type { System } from "../core/system.js";
import { WorkerDefinitions } from "../core/workers.js";
import { servedChannels } from "../core/weighted.js";
import { ResponseType, RunnerType } from "../gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../gen/jobworkerp/data/job_pb.js";
import { mcpRunnerLoader } from "../runners/mcp/index.js";
import { registerConfiguredServers } from "../runners/mcp/registration.js";
import { WorkerInstanceSchema } from "../gen/jobworkerp/data/worker_instance_pb.js";
import { commandRunner } from "../runners/command/index.js";
import { dockerRunner } from "../runners/docker/index.js";
import { dockerEngineFor } from "./docker_engine.js";
import { grpcRunner, grpcUnaryRunner } from "../runners/grpc/index.js";
import { httpRequestRunner } from "../runners/http_request/index.js";
import { llmRunner } from "../runners/llm/index.js";
import { LateBoundToolHost } from "../runners/llm/tools.js";
import { LateBoundJobHost } from "../runners/workflow/host.js";
import { workflowRunner, workflowRunnerOptions } from "../runners/workflow/index.js";
import { SystemJobHost } from "../runners/workflow/system_host.js";
import { SystemFunctions } from "../core/functions.js";
import { noopRunner } from "../runners/noop/index.js";
import { pluginRunnerLoader, registerPlugins } from "../runners/plugin/register.js";
import { pythonCommandRunner } from "../runners/python_command/index.js";
import { slackPostMessageRunner } from "../runners/slack/index.js";
import { supervisedRunner } from "../runners/supervised/index.js";
import { jobLogFields } from "../observability/index.js";
import { startObservability, systemMetricSources } from "../observability/setup.js";
import { ConfigError, type Config } from "./config.js";

/**
 * Grabs hold "forever": a grabbed durable job is in the queue (whose leases protect it from dying workers)
 * or running. Embedded mode releases all grabs at start-up; Scalable recovers a lost queue with
 * JobRestoreService / STORAGE_RESTORE_AT_STARTUP.
 */
const CENTURY_MS = 100 * 365 * 86_400_000;
const LEADER_TTL_MS = 5_000;
/** 14 minutes: under SQS's 15-minute DelaySeconds cap. */
const AWS_FRONT_LOOKAHEAD_MS = 14 * 60_000;
/** Delay of the heartbeat a reporter asks for (changes within it travel in one beat). */
const EARLY_BEAT_MS = 200;

export interface Running {
  system: System;
  /** Whether this process serves gRPC (all-in-one and front). */
  servesApi: boolean;
  /** Stop the clock and leasing, finish in-flight jobs, save still-queued jobs (embedded). */
  stopWork(): Promise<void>;
  /** Close the backends (after the API has drained). */
  close(): Promise<void>;
}

interface Backends {
  store: Store;
  queue: JobQueue;
  state: JobState;
  bus: ResultBus;
  instances: InstanceRegistry;
  lock: LeaderLock;
  /** Snowflake node (10 bits) for this process: unique among the processes that share the backends. */
  snowflakeNode: bigint;
  /** Told the channel of every job queued by this process (AWS: wakes a channel's service from zero tasks). */
  onJobQueued?: (channel: string) => void;
  /** Whether this process may run the in-process clock (AWS: only with AWS_LOCAL_FUNCTIONS; else the dispatch Lambda does). */
  runsClock: boolean;
  /** Work beside the clock once the system exists (AWS_LOCAL_FUNCTIONS: the dead-letter poller); returns its stop. */
  startExtras?(sys: Pick<System, "store" | "state" | "bus" | "workers" | "outcomes">): () => Promise<void>;
  close(): Promise<void>;
}

async function standaloneBackends(cfg: Config, runners: RunnerRegistry, log: Logger): Promise<Backends> {
  if (cfg.role !== "all-in-one") {
    throw new ConfigError(`Standalone keeps queues in this process's memory: run 'all-in-one', not '${cfg.role}' (or use STORAGE_TYPE=Scalable)`);
  }
  // POSTGRES_URL replaces the store in either shape (here SQLite, below MySQL)
  const store = cfg.postgresUrl ? await openPostgresStore(cfg.postgresUrl) : await openSqliteStore(cfg.sqliteUrl);
  await store.migrate(runners.builtinRows(Date.now()));
  // This is the only process, so grabs left by a previous run belong to nobody.
  const released = await store.releaseAllGrabs();
  if (released > 0) log.info({ released }, "released durable jobs left grabbed by the previous run");
  const queue = new MemoryJobQueue(cfg.leaseMs);
  const bus = new MemoryResultBus();
  return {
    store, queue, bus,
    state: new MemoryJobState(),
    instances: new MemoryInstanceRegistry(),
    lock: new MemoryLeaderLock(),
    snowflakeNode: nodeFromHostIp(),
    runsClock: true,
    async close() {
      await queue.close();
      await bus.close();
      await store.close();
    },
  };
}

/** Store (MySQL, or PostgreSQL) and Redis (result bus, instances, leader lock, id nodes): Scalable and AWS share them. */
async function sharedBackends(cfg: Config, runners: RunnerRegistry) {
  const store = cfg.postgresUrl ? await openPostgresStore(cfg.postgresUrl) : await openMysqlStore(cfg.mysqlUrl);
  await store.migrate(runners.builtinRows(Date.now()));
  // Autopipelining sends the commands of one event-loop turn in one write: the dispatcher's loops and the
  // front's concurrent calls issue theirs together (measured: less Node and Redis CPU per job).
  const redis = new Redis(cfg.redisUrl, { lazyConnect: false, enableAutoPipelining: true });
  const prefix = cfg.redisKeyPrefix;
  const bus = new RedisResultBus(redis, { prefix });
  return {
    redis,
    store,
    bus,
    instances: new RedisInstanceRegistry(redis, { prefix, ttlMs: 2 * cfg.instanceTimeoutMs }),
    lock: new RedisLeaderLock(redis, `${prefix}:{clock}:leader`),
    // processes on one host share its IP, so the IP-derived node of jobworkerp-rs would collide: take a turn
    snowflakeNode: BigInt((await redis.incr(`${prefix}:{ids}:node`)) % 1024),
    async close() {
      await bus.close();
      await store.close();
      redis.disconnect();
    },
  };
}

async function scalableBackends(cfg: Config, runners: RunnerRegistry): Promise<Backends> {
  const shared = await sharedBackends(cfg, runners);
  const prefix = cfg.redisKeyPrefix;
  const queue = new RedisJobQueue(shared.redis, { prefix, leaseMs: cfg.leaseMs });
  return {
    ...shared,
    queue,
    state: new RedisJobState(shared.redis, { prefix }),
    runsClock: true,
    async close() {
      await queue.close();
      await shared.close();
    },
  };
}

/**
 * AWS: SQS queues (one per channel and priority) and DynamoDB job state; the store (MySQL, or PostgreSQL) and
 * Redis (result bus, instances, leader lock) as in Scalable. The clock is the dispatch Lambda on EventBridge
 * Scheduler; AWS_LOCAL_FUNCTIONS runs it (and the dead-letter recorder) in these processes instead.
 */
async function awsBackends(cfg: Config, runners: RunnerRegistry, log: Logger): Promise<Backends> {
  const shared = await sharedBackends(cfg, runners);
  const { store } = shared;
  const a = cfg.aws;
  const clients = createAwsClients({ region: a.region, endpointUrl: a.endpointUrl });
  const state = new DynamoJobState({ dynamo: clients.dynamo, resourcePrefix: a.resourcePrefix });
  const spill: SpillStore = {
    put: (key, bytes) => store.putSpill(key, bytes, Date.now()),
    get: (key) => store.getSpill(key),
    delete: async (key) => void (await store.deleteSpill(key)),
  };
  const queue = new SqsJobQueue({
    sqs: clients.sqs,
    dynamo: clients.dynamo,
    resourcePrefix: a.resourcePrefix,
    leaseMs: cfg.leaseMs,
    spill,
    // a retry whose backoff exceeds SQS's 15-minute delay waits in the store for the clock, as a scheduled job does
    longDelay: async (item, delayMs) => {
      const job = clone(JobSchema, item.job);
      job.data!.runAfterTime = BigInt(Date.now() + delayMs);
      job.data!.grabbedUntilTime = undefined;
      if (!(await store.updateJob(job))) await store.insertJob(job);
    },
    listWaiting: pendingJobsFromState(state),
    onError: (e, context) => log.warn({ err: e }, context),
    createMissingQueues: a.createMissingQueues ? { maxReceiveCount: 5 } : undefined,
  });
  const ecs = a.ecsCluster && cfg.role !== "worker" ? createEcsClient({ region: a.region, endpointUrl: a.endpointUrl }) : undefined;
  const waker =
    ecs && a.ecsCluster
      ? new ScaleFromZero(ecs, { cluster: a.ecsCluster, prefix: a.resourcePrefix, channels: a.channels, onError: (e, channel) => log.warn({ err: e, channel }, "scale-from-zero nudge failed") })
      : undefined;
  return {
    ...shared,
    queue,
    state,
    onJobQueued: waker?.nudge,
    runsClock: a.localFunctions,
    startExtras: a.localFunctions && cfg.role !== "worker"
      ? (sys) => {
          const poller = new LocalDeadLetterPoller({
            sqs: clients.sqs,
            resourcePrefix: a.resourcePrefix,
            channels: a.channels,
            recorder: new DeadLetterRecorder(sys),
            spill,
            onError: (e, context) => log.warn({ err: e }, context),
            onRecorded: (jobId) => log.warn({ jobId: String(jobId) }, "job reached its dead-letter queue: recorded as failed"),
          });
          poller.start();
          return () => poller.stop();
        }
      : undefined,
    async close() {
      await queue.close();
      await shared.close();
      ecs?.destroy();
      clients.destroy();
    },
  };
}

export async function compose(cfg: Config, log: Logger): Promise<Running> {
  // the LLM runner calls workers/runners as tools through the System, which is built below
  const llmTools = new LateBoundToolHost();
  // the WORKFLOW runner's run tasks enqueue jobs through the System, bound the same way
  const workflowJobs = new LateBoundJobHost();
  // long-running child processes: released with their worker, reported in this process's WorkerInstance
  const supervised = supervisedRunner({ venvDir: cfg.pythonVenvDir, log });
  const runners = new RunnerRegistry([commandRunner, httpRequestRunner, grpcRunner, grpcUnaryRunner, dockerRunner({ dockerHost: cfg.dockerHost, engine: dockerEngineFor(cfg.dockerBackend) }), pythonCommandRunner({ venvDir: cfg.pythonVenvDir }), slackPostMessageRunner({ apiBaseUrl: cfg.slackApiBaseUrl }), llmRunner(llmTools, { apiKey: cfg.llmApiKey }), workflowRunner({ host: workflowJobs, ...workflowRunnerOptions(cfg) }), supervised, ...(cfg.enableNoopRunner ? [noopRunner] : [])]);
  const embedded = cfg.storageType === "Standalone";
  const b = embedded ? await standaloneBackends(cfg, runners, log) : cfg.storageType === "Aws" ? await awsBackends(cfg, runners, log) : await scalableBackends(cfg, runners);
  const { store, queue, state, bus, instances } = b;
  const runsJobs = cfg.role !== "front";

  const ids = new SnowflakeGenerator(b.snowflakeNode);
  // dynamic runners: rows of the runner table loaded by type (MCP servers from MCP_CONFIG or RunnerService.Create)
  runners.setLoader(RunnerType.MCP_SERVER, mcpRunnerLoader);
  runners.attach(store, bus);
  await registerConfiguredServers({ store, ids, runners }, cfg.mcpConfig.path, cfg.mcpConfig.explicit, log);
  // plugin modules (JS/TS, each instance in a worker thread) from PLUGINS_RUNNER_DIR; a bad one is skipped
  runners.setLoader(RunnerType.PLUGIN, pluginRunnerLoader(cfg.plugins));
  if (cfg.plugins.dir) {
    const skip = (file: string, err: Error) => log.error({ plugin: file, err: err.message }, "plugin runner skipped");
    for (const row of await registerPlugins({ store, ids, runners }, cfg.plugins.dir, skip, cfg.plugins)) {
      log.info({ runner: row.name, id: row.id.toString(), path: row.definition }, "plugin runner ready");
    }
  }
  const workers = new WorkerDefinitions(store, runners, bus);
  const runnerInstances = new RunnerInstances();
  runners.onForget((runnerId) => void runnerInstances.dropRunner(runnerId));
  workers.onChange((id) => void runnerInstances.drop(id));
  workers.onChange((id) => supervised.releaseWorker(id));
  const outcomes = new JobOutcomes(store, state, bus, ids, cfg.expireJobResultMs);
  // A process that polls looks ahead a little; a front whose clock is the dispatch Lambda (AWS, once a minute) queues
  // a new job itself if it is due within SQS's longest delay, so nothing falls between two firings.
  const lookaheadMs = b.runsClock ? Math.max(2 * cfg.fetchIntervalMs, 2000) : AWS_FRONT_LOOKAHEAD_MS;
  const clock = new Clock({ store, queue, state, workers, onQueued: b.onJobQueued }, { fetchIntervalMs: cfg.fetchIntervalMs, lookaheadMs, grabLeaseMs: CENTURY_MS }, (e) =>
    log.error({ err: e }, "clock pass failed"),
  );
  const front = new JobFront({ store, queue, state, bus, workers, runners, outcomes, ids, clock }, { onJobQueued: b.onJobQueued });
  const dispatcher = runsJobs
    ? new Dispatcher(
        { store, queue, state, bus, workers, runners, runnerInstances, outcomes },
        cfg.channels,
        (e, job, channel) => log.error({ err: e, ...jobLogFields(job, channel) }, "job processing failed"),
        cfg.leaseMs,
      )
    : undefined;

  const system: System = {
    store, queue, state, bus, instances, ids, runners, workers, runnerInstances, outcomes, front, clock, dispatcher,
    // as jobworkerp-rs: FindChannelList answers from this process's channel configuration, whatever its role
    channels: servedChannels(cfg.channels),
    instanceTimeoutMs: cfg.instanceTimeoutMs,
  };
  llmTools.bind(new SystemFunctions(system));
  workflowJobs.bind(new SystemJobHost(system));
  // traces / metrics exporters (OTLP_ADDR, PROMETHEUS_ADDR): registered before any job can run
  const telemetry = await startObservability(cfg.observability, cfg.role, systemMetricSources(system), log);

  if (!embedded && cfg.restoreAtStartup) {
    const n = await restoreJobs(system, true, 100_000);
    log.info({ restored: n }, "restored durable jobs missing from the queue");
  }

  // Worker processes register themselves and heartbeat.
  const instance = create(WorkerInstanceSchema, {
    id: { value: ids.next() },
    data: { ipAddress: firstIpv4(), hostname: hostname(), channels: servedChannels(cfg.channels), registeredAt: BigInt(Date.now()), lastHeartbeat: BigInt(Date.now()) },
  });
  const reporters: InstanceReporter[] = [supervised];
  let early: NodeJS.Timeout | undefined;
  const beat = () => {
    clearTimeout(early);
    early = undefined;
    for (const r of reporters) r.report(instance.data!);
    instance.data!.lastHeartbeat = BigInt(Date.now());
    return instances.heartbeat(instance).catch((err) => log.warn({ err }, "worker instance heartbeat failed"));
  };
  let heartbeat: NodeJS.Timeout | undefined;
  if (runsJobs) {
    await beat();
    heartbeat = setInterval(() => void beat(), cfg.instanceHeartbeatMs);
    heartbeat.unref();
    // a child that died or became ready shows in WorkerInstanceService without waiting for the next heartbeat
    const beatSoon = () => void (heartbeat && (early ??= setTimeout(() => void beat(), EARLY_BEAT_MS).unref()));
    for (const r of reporters) r.onNotable(beatSoon);
    dispatcher!.start();
  }
  // Every process may lead the clock; the lock lets exactly one poll at a time.
  const leadership = new ClockLeadership(clock, b.lock, embedded ? 10_000 : LEADER_TTL_MS, (e) => log.error({ err: e }, "clock leadership failed"));
  if (b.runsClock) leadership.start();
  const stopExtras = b.startExtras?.(system);

  return {
    system,
    servesApi: cfg.role !== "worker",
    async stopWork() {
      clearInterval(heartbeat);
      clearTimeout(early);
      heartbeat = undefined; // no early beat re-registers the instance removed below
      await leadership.stop();
      await stopExtras?.();
      if (dispatcher) {
        log.info({ inFlight: dispatcher.inFlight }, "stopped leasing; waiting for in-flight jobs");
        await dispatcher.shutdown();
      }
      if (embedded) {
        const saved = await saveQueued(system);
        if (saved > 0) log.info({ saved }, "saved queued jobs to the store; they run after the next start");
      }
      if (runsJobs) await instances.remove(instance.id!.value).catch(() => undefined);
    },
    async close() {
      await telemetry.shutdown(); // flushes the spans and metrics of the jobs finished above
      await runnerInstances.closeAll();
      await supervised.closeAll();
      await b.close();
    },
  };
}

/**
 * Embedded mode: jobs still queued in memory at shutdown are written to the store so the next start runs
 * them (live DIRECT/stream jobs are not: their caller is gone).
 */
async function saveQueued(sys: System): Promise<number> {
  let saved = 0;
  for (const item of await sys.queue.list(undefined, Number.MAX_SAFE_INTEGER)) {
    if (item.durable || item.loadOnly) continue;
    const job = item.job;
    if (job.data!.streamingType !== 0) continue;
    const worker = await sys.workers.find(job.data!.workerId!.value);
    const direct = (job.data!.overrides?.responseType ?? worker?.data!.responseType) === ResponseType.DIRECT;
    if (!worker || direct) continue;
    try {
      await sys.store.insertJob(job);
      saved++;
    } catch (e) {
      if (!(e instanceof AppError && e.kind === "ALREADY_EXISTS")) throw e;
    }
  }
  return saved;
}

function firstIpv4(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}
