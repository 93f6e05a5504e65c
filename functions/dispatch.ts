// dispatch: the clock of the AWS shape. EventBridge Scheduler fires it every minute (rate(1 minute)); one firing
// queues every durable job (scheduled, periodic occurrences, DB_ONLY, retries parked in MySQL) due before the next
// firing plus a margin, each with its exact remaining delay, and re-arms periodic workers: the same Clock the
// containers run (core/clock.ts), one tick per invocation. Jobs due later stay in MySQL.
import middy from "@middy/core";
import type { Logger } from "pino";
import type { Clock } from "../worker-container/src/core/clock.js";
import { dispatchDeps } from "./deps.js";

/** What the schedule sends (bootstrap / CDK: `{"scheduledTime": "<aws.scheduler.scheduled-time>"}`); EventBridge rules send `time`. */
export interface ClockEvent {
  scheduledTime?: string;
  time?: string;
}

export interface DispatchResult {
  /** Jobs (periodic occurrences) queued by this tick. */
  queued: number;
  /** The tick's time and window (epoch ms). */
  now: number;
  horizonMs: number;
}

export interface DispatchDeps {
  /** A clock for one tick (its worker definitions are read fresh each time). */
  clock(): Pick<Clock, "tick">;
  /** The window of a tick: a little more than the schedule's period, at most SQS's 15-minute delay. */
  horizonMs: number;
  /** The current time; tests pass a controllable clock. */
  now(): number;
  log: Pick<Logger, "info" | "warn">;
}

export function dispatchHandler(deps: () => Promise<DispatchDeps>) {
  return middy<ClockEvent, DispatchResult>().handler(async (event) => {
    const d = await deps();
    const now = d.now();
    const queued = await d.clock().tick(now, d.horizonMs);
    const scheduled = Date.parse(event?.scheduledTime ?? event?.time ?? "");
    d.log.info({ queued, now, lagMs: Number.isFinite(scheduled) ? now - scheduled : undefined }, "dispatch tick");
    return { queued, now, horizonMs: d.horizonMs };
  });
}

export const handler = dispatchHandler(dispatchDeps);
