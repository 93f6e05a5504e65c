// Scale-from-zero: a job queued on a channel whose ECS worker service sleeps (0 running, 0 desired) would wait
// for the backlog alarm (minutes); the front wakes the service at once by setting its desired count to 1.
// Fire-and-forget and rate-limited per channel; never lowers a desired count, never exceeds the channel's max.
import { DescribeServicesCommand, UpdateServiceCommand, type ECSClient } from "@aws-sdk/client-ecs";
import { findChannel, splitSubQueue, type ChannelSpec } from "../../core/channel_config.js";
import { workerServiceName } from "./resources.js";

export interface ScaleFromZeroOptions {
  cluster: string;
  /** Resource prefix of the deployment (service names: workerServiceName(prefix, channel)). */
  prefix: string;
  channels: readonly ChannelSpec[];
  /** At most one look at a channel's service per this many ms (default 15 s). */
  minIntervalMs?: number;
  /** Where failures go (they never reach the Enqueue that caused the nudge). */
  onError?: (e: unknown, channel: string) => void;
  now?: () => number;
}

/** What a nudge did. */
export type NudgeOutcome = "scaled" | "awake" | "rate-limited" | "unknown-channel" | "no-service";

export class ScaleFromZero {
  private readonly lastLook = new Map<string, number>();

  constructor(
    private readonly ecs: ECSClient,
    private readonly opts: ScaleFromZeroOptions,
  ) {}

  /** The hook for the front (JobFront onJobQueued, Clock onQueued): returns at once, errors are reported, not thrown. */
  readonly nudge = (channel: string): void => {
    this.check(channel).catch((e) => this.opts.onError?.(e, channel));
  };

  /** Look at the channel's service and wake it if it sleeps. */
  async check(channel: string): Promise<NudgeOutcome> {
    const spec = findChannel(this.opts.channels, channel);
    if (!spec) return "unknown-channel";
    const base = spec.name;
    const now = (this.opts.now ?? Date.now)();
    const last = this.lastLook.get(base);
    if (last !== undefined && now - last < (this.opts.minIntervalMs ?? 15_000)) return "rate-limited";
    this.lastLook.set(base, now); // also after a failure: a broken API is not hammered by every Enqueue
    const service = workerServiceName(this.opts.prefix, splitSubQueue(base).channel);
    const out = await this.ecs.send(new DescribeServicesCommand({ cluster: this.opts.cluster, services: [service] }));
    const s = out.services?.find((x) => x.serviceName === service);
    if (!s || s.status === "INACTIVE") return "no-service";
    if ((s.runningCount ?? 0) > 0 || (s.desiredCount ?? 0) > 0 || (s.pendingCount ?? 0) > 0) return "awake";
    await this.ecs.send(new UpdateServiceCommand({ cluster: this.opts.cluster, service, desiredCount: Math.min(1, spec.maxTasks) }));
    return "scaled";
  }
}
