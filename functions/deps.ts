// What the Lambda handlers run on, built from the function config (cli/config.ts loadFunctionConfig) once per
// Lambda container and kept across warm invocations. Each function builds only the backends it uses: dispatch
// (MySQL, SQS, DynamoDB, ECS for the nudge), dlq-recorder (MySQL, DynamoDB, Redis), metrics (SQS, ECS, CloudWatch).
import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { BacklogMeter } from "../worker-container/src/adapters/aws/backlog_metrics.js";
import { createAwsClients, type AwsClientConfig } from "../worker-container/src/adapters/aws/clients.js";
import { DynamoJobState } from "../worker-container/src/adapters/aws/dynamo_job_state.js";
import { createCloudWatchClient, createEcsClient } from "../worker-container/src/adapters/aws/ops_clients.js";
import { ScaleFromZero } from "../worker-container/src/adapters/aws/scale_from_zero.js";
import { SqsJobQueue, type SpillStore } from "../worker-container/src/adapters/aws/sqs_job_queue.js";
import { openMysqlStore } from "../worker-container/src/adapters/mysql/index.js";
import { RedisResultBus } from "../worker-container/src/adapters/redis/result_bus.js";
import { ConfigError, loadFunctionConfig, type FunctionConfig } from "../worker-container/src/cli/config.js";
import { Clock } from "../worker-container/src/core/clock.js";
import { DeadLetterRecorder } from "../worker-container/src/core/dead_letters.js";
import { SnowflakeGenerator } from "../worker-container/src/core/ids.js";
import { JobOutcomes } from "../worker-container/src/core/outcomes.js";
import type { Store } from "../worker-container/src/core/ports.js";
import type { Worker } from "../worker-container/src/gen/jobworkerp/data/worker_pb.js";
import type { DispatchDeps } from "./dispatch.js";
import type { RecorderDeps } from "./dlq_recorder.js";
import type { MetricsDeps } from "./metrics.js";

/** A grabbed one-shot job stays grabbed while it is queued or runs (as in the containers' clock). */
const CENTURY_MS = 100 * 365 * 86_400_000;

export interface DepsOptions {
  /** Client settings over the config's (tests: static credentials for the local endpoint). */
  aws?: Partial<AwsClientConfig>;
  /** The dispatch clock's time (tests: a controllable clock). */
  now?: () => number;
  /** Bytes of jobs too big for one SQS message: the same spill store the containers' queue uses. */
  spill?: SpillStore;
  log?: Logger;
}

export interface Closable {
  /** Release connections (tests; a Lambda container just ends). */
  close(): Promise<void>;
}

const awsConfig = (cfg: FunctionConfig, o: DepsOptions): AwsClientConfig => ({ region: cfg.aws.region, endpointUrl: cfg.aws.endpointUrl, ...o.aws });
const logger = (cfg: FunctionConfig, o: DepsOptions, fn: string) => o.log ?? pino({ level: cfg.logLevel, base: { function: fn } });

/** Worker definitions read fresh for each tick (a warm Lambda must not keep an old periodic interval). */
function tickWorkers(store: Store) {
  const seen = new Map<bigint, Promise<Worker | undefined>>();
  return {
    find(id: bigint) {
      let w = seen.get(id);
      if (!w) seen.set(id, (w = store.findWorker(id)));
      return w;
    },
  };
}

export async function buildDispatchDeps(cfg: FunctionConfig, o: DepsOptions = {}): Promise<DispatchDeps & Closable> {
  const log = logger(cfg, o, "dispatch");
  const aws = createAwsClients(awsConfig(cfg, o));
  const store = await openMysqlStore(cfg.mysqlUrl);
  const prefix = cfg.aws.resourcePrefix;
  const queue = new SqsJobQueue({ sqs: aws.sqs, dynamo: aws.dynamo, resourcePrefix: prefix, spill: o.spill, onError: (e, context) => log.warn({ err: e }, context) });
  const state = new DynamoJobState({ dynamo: aws.dynamo, resourcePrefix: prefix });
  const ecs = cfg.ecsCluster ? createEcsClient(awsConfig(cfg, o)) : undefined;
  const nudger =
    ecs && cfg.ecsCluster
      ? new ScaleFromZero(ecs, { cluster: cfg.ecsCluster, prefix, channels: cfg.channels, onError: (e, channel) => log.warn({ err: e, channel }, "scale-from-zero nudge failed") })
      : undefined;
  return {
    horizonMs: cfg.dispatchHorizonMs,
    now: o.now ?? Date.now,
    log,
    clock() {
      const queuedOn = new Set<string>();
      const clock = new Clock(
        { store, queue, state, workers: tickWorkers(store), onQueued: (channel) => queuedOn.add(channel) },
        { fetchIntervalMs: cfg.dispatchHorizonMs, lookaheadMs: cfg.dispatchHorizonMs, grabLeaseMs: CENTURY_MS },
        (e) => log.warn({ err: e }, "clock pass failed"),
      );
      return {
        async tick(now: number, horizonMs: number) {
          const queued = await clock.tick(now, horizonMs);
          // awaited: a Lambda is frozen once it returns, so a fire-and-forget call might never be made
          if (nudger) await Promise.all([...queuedOn].map((channel) => nudger.check(channel).catch((e: unknown) => log.warn({ err: e, channel }, "scale-from-zero nudge failed"))));
          return queued;
        },
      };
    },
    async close() {
      await queue.close();
      await store.close();
      ecs?.destroy();
      aws.destroy();
    },
  };
}

export async function buildRecorderDeps(cfg: FunctionConfig, o: DepsOptions = {}): Promise<RecorderDeps & Closable> {
  const log = logger(cfg, o, "dlq-recorder");
  const aws = createAwsClients(awsConfig(cfg, o));
  const store = await openMysqlStore(cfg.mysqlUrl);
  const redis = new Redis(cfg.redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 2 });
  const bus = new RedisResultBus(redis, { prefix: cfg.redisKeyPrefix });
  const state = new DynamoJobState({ dynamo: aws.dynamo, resourcePrefix: cfg.aws.resourcePrefix });
  // result ids: a snowflake node of its own, taken in turn like the containers' (cli/compose.ts)
  const ids = new SnowflakeGenerator(BigInt((await redis.incr(`${cfg.redisKeyPrefix}:{ids}:node`)) % 1024));
  const outcomes = new JobOutcomes(store, state, bus, ids, cfg.expireJobResultMs);
  return {
    recorder: new DeadLetterRecorder({ store, state, bus, workers: { find: (id) => store.findWorker(id) }, outcomes }),
    channels: cfg.channels,
    spill: o.spill,
    log,
    async close() {
      await bus.close();
      redis.disconnect();
      await store.close();
      aws.destroy();
    },
  };
}

export async function buildMetricsDeps(cfg: FunctionConfig, o: DepsOptions = {}): Promise<MetricsDeps & Closable> {
  if (!cfg.ecsCluster) throw new ConfigError("the metrics function needs ECS_CLUSTER (running tasks of the channels' worker services)");
  const log = logger(cfg, o, "metrics");
  const aws = createAwsClients(awsConfig(cfg, o));
  const ecs = createEcsClient(awsConfig(cfg, o));
  const cloudwatch = createCloudWatchClient(awsConfig(cfg, o));
  const meter = new BacklogMeter(aws.sqs, ecs, {
    prefix: cfg.aws.resourcePrefix,
    cluster: cfg.ecsCluster,
    channels: cfg.channels,
    onError: (e, what) => log.warn({ err: e, what }, "backlog not measured"),
  });
  return {
    meter,
    cloudwatch,
    log,
    async close() {
      ecs.destroy();
      cloudwatch.destroy();
      aws.destroy();
    },
  };
}

/** Built on the first invocation and kept by the Lambda container; a failed build is tried again next time. */
function once<T>(build: () => Promise<T>): () => Promise<T> {
  let built: Promise<T> | undefined;
  return () =>
    (built ??= build().catch((e: unknown) => {
      built = undefined;
      throw e;
    }));
}

export const dispatchDeps = once(() => buildDispatchDeps(loadFunctionConfig()));
export const recorderDeps = once(() => buildRecorderDeps(loadFunctionConfig()));
export const metricsDeps = once(() => buildMetricsDeps(loadFunctionConfig()));
