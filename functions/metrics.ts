// metrics: fired every minute by EventBridge Scheduler; publishes each channel's Backlog and BacklogPerTask to
// CloudWatch (namespace "Jobworkerp", dimension Channel), the signal the CDK app's target tracking scales the
// channel's worker service on (adapters/aws/backlog_metrics.ts; names in docs/aws.md).
import middy from "@middy/core";
import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { Logger } from "pino";
import { publishBacklog, type BacklogMeter } from "../worker-container/src/adapters/aws/backlog_metrics.js";
import { metricsDeps } from "./deps.js";

export interface MetricsDeps {
  meter: Pick<BacklogMeter, "measure">;
  cloudwatch: CloudWatchClient;
  log: Pick<Logger, "info">;
}

export interface MetricsResult {
  channels: number;
  data: number;
}

export function metricsHandler(deps: () => Promise<MetricsDeps>) {
  return middy<unknown, MetricsResult>().handler(async () => {
    const d = await deps();
    const samples = await d.meter.measure();
    const data = await publishBacklog(d.cloudwatch, samples);
    d.log.info({ backlog: Object.fromEntries(samples.map((s) => [s.channel, s.backlog])) }, "backlog published");
    return { channels: samples.length, data };
  });
}

export const handler = metricsHandler(metricsDeps);
