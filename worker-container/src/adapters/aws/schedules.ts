// The EventBridge Scheduler schedules of the AWS shape: the dispatch Lambda (the clock) and the metrics Lambda,
// each fired rate(1 minute). `jobworkerp aws bootstrap` creates them through the API against a local endpoint; the
// CDK app declares the same names and input.
import { CreateScheduleCommand, GetScheduleCommand, UpdateScheduleCommand, type SchedulerClient } from "@aws-sdk/client-scheduler";
import { awsErrorName } from "./clients.js";

export const SCHEDULE_RATE = "rate(1 minute)";

/**
 * The event each firing sends: Scheduler fills in the firing's time (a context attribute), which the dispatch
 * function logs its lag against.
 */
export const CLOCK_EVENT_INPUT = JSON.stringify({ scheduledTime: "<aws.scheduler.scheduled-time>" });

export const scheduleNames = (prefix: string) => ({ dispatch: `${prefix}-dispatch-clock`, metrics: `${prefix}-backlog-metrics` });

export interface ClockSchedules {
  prefix: string;
  /** ARNs of the functions to fire (the metrics schedule is made only when its function is given). */
  dispatchFunctionArn: string;
  metricsFunctionArn?: string;
  /** The role Scheduler assumes to invoke them (lambda:InvokeFunction). */
  roleArn: string;
  /** Schedule group (default: "default"). */
  groupName?: string;
}

/** Create or update the schedules; returns their names and whether each was new. */
export async function ensureClockSchedules(scheduler: SchedulerClient, s: ClockSchedules): Promise<{ name: string; created: boolean }[]> {
  const done: { name: string; created: boolean }[] = [];
  const names = scheduleNames(s.prefix);
  const wanted = [{ name: names.dispatch, arn: s.dispatchFunctionArn, what: "dispatch (jobworkerp clock)" }];
  if (s.metricsFunctionArn) wanted.push({ name: names.metrics, arn: s.metricsFunctionArn, what: "backlog metrics (autoscaling)" });
  for (const w of wanted) {
    const input = {
      Name: w.name,
      GroupName: s.groupName,
      ScheduleExpression: SCHEDULE_RATE,
      FlexibleTimeWindow: { Mode: "OFF" as const },
      State: "ENABLED" as const,
      Description: `jobworkerp: ${w.what}`,
      Target: { Arn: w.arn, RoleArn: s.roleArn, Input: CLOCK_EVENT_INPUT, RetryPolicy: { MaximumRetryAttempts: 0 } },
    };
    let exists = true;
    try {
      await scheduler.send(new GetScheduleCommand({ Name: w.name, GroupName: s.groupName }));
    } catch (e) {
      if (awsErrorName(e) !== "ResourceNotFoundException") throw e;
      exists = false;
    }
    await scheduler.send(exists ? new UpdateScheduleCommand(input) : new CreateScheduleCommand(input));
    done.push({ name: w.name, created: !exists });
  }
  return done;
}
