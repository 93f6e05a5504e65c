// Retry delays with jobworkerp-rs's formula. `retried` counts retries already made (0 before the first retry).
//   CONSTANT:    interval
//   LINEAR:      interval * (retried + 1)
//   EXPONENTIAL: round(interval * basis^retried)
// then capped by max_interval when it is > 0. An unset basis (0) counts as 2.
// max_retry = 0 means "no retry" (what jobworkerp-rs does, although its proto comment says "unlimited").
import { create } from "@bufbuild/protobuf";
import { RetryPolicySchema, RetryType, type RetryPolicy } from "../gen/jobworkerp/data/common_pb.js";

const U32_MAX = 4_294_967_295;

/** Delay before the next attempt in ms, or undefined when the policy allows no further retry. */
export function nextRetryDelay(policy: RetryPolicy | undefined, retried: number): number | undefined {
  if (!policy || policy.type === RetryType.NONE || retried >= policy.maxRetry) return undefined;
  let delay: number;
  switch (policy.type) {
    case RetryType.CONSTANT:
      delay = policy.interval;
      break;
    case RetryType.LINEAR:
      delay = policy.interval * (retried + 1);
      break;
    case RetryType.EXPONENTIAL:
      delay = Math.round(policy.interval * Math.pow(policy.basis || 2, retried));
      break;
    default:
      return undefined;
  }
  // saturate like jobworkerp-rs's u32 arithmetic instead of overflowing
  delay = Math.min(delay, U32_MAX);
  if (policy.maxInterval > 0) delay = Math.min(delay, policy.maxInterval);
  return delay;
}

/** How many retries the policy allows (0: none), as a runner may tell its job. */
export function retryLimit(policy: RetryPolicy | undefined): number {
  return !policy || policy.type === RetryType.NONE ? 0 : policy.maxRetry;
}

/** Upper bound of the time all retries can wait in total (used for DIRECT wait deadlines). */
export function totalRetryDelay(policy: RetryPolicy | undefined): number {
  let sum = 0;
  // Bounded loop: an absurd max_retry must not hang the caller (the sum is only a deadline).
  for (let r = 0; r < 10_000; r++) {
    const d = nextRetryDelay(policy, r);
    if (d === undefined) return sum;
    sum += d;
  }
  return sum;
}

/** jobworkerp-rs's default for workers made by functions and workflows. */
export const defaultRetryPolicy = (): RetryPolicy =>
  create(RetryPolicySchema, { type: RetryType.EXPONENTIAL, interval: 3000, maxInterval: 60000, maxRetry: 3, basis: 2 });
