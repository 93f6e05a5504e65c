// jobworkerp-rs's retry delay formula (worker-container/src/core/retry.ts).
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { defaultRetryPolicy, nextRetryDelay, totalRetryDelay } from "../../worker-container/src/core/retry.js";
import { RetryPolicySchema, RetryType, type RetryPolicy } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";

const policy = (p: Partial<Omit<RetryPolicy, "$typeName">>): RetryPolicy =>
  create(RetryPolicySchema, { type: RetryType.CONSTANT, interval: 100, maxInterval: 0, maxRetry: 10, basis: 2, ...p });
const delays = (p: RetryPolicy, n: number) => Array.from({ length: n }, (_, r) => nextRetryDelay(p, r));

describe("nextRetryDelay", () => {
  it("CONSTANT: always the interval", () => {
    expect(delays(policy({ type: RetryType.CONSTANT, interval: 250 }), 5)).toEqual([250, 250, 250, 250, 250]);
  });

  it("LINEAR: interval * (retried + 1)", () => {
    expect(delays(policy({ type: RetryType.LINEAR, interval: 100 }), 5)).toEqual([100, 200, 300, 400, 500]);
    expect(nextRetryDelay(policy({ type: RetryType.LINEAR, interval: 7 }), 9)).toBe(70);
  });

  it("EXPONENTIAL: round(interval * basis^retried)", () => {
    expect(delays(policy({ type: RetryType.EXPONENTIAL, interval: 100, basis: 2 }), 5)).toEqual([100, 200, 400, 800, 1600]);
    expect(delays(policy({ type: RetryType.EXPONENTIAL, interval: 100, basis: 3 }), 4)).toEqual([100, 300, 900, 2700]);
    // non-integer products are rounded: 100 * 1.5^r = 100, 150, 225, 337.5 → 338, 506.25 → 506
    expect(delays(policy({ type: RetryType.EXPONENTIAL, interval: 100, basis: 1.5 }), 5)).toEqual([100, 150, 225, 338, 506]);
    // 3 * 1.5 = 4.5 → 5 (rounded, not truncated)
    expect(nextRetryDelay(policy({ type: RetryType.EXPONENTIAL, interval: 3, basis: 1.5 }), 1)).toBe(5);
  });

  it("EXPONENTIAL: an unset basis (0) counts as 2", () => {
    expect(delays(policy({ type: RetryType.EXPONENTIAL, interval: 10, basis: 0 }), 4)).toEqual([10, 20, 40, 80]);
  });

  it("max_interval caps every type; 0 means no cap", () => {
    expect(delays(policy({ type: RetryType.EXPONENTIAL, interval: 100, basis: 2, maxInterval: 500 }), 6)).toEqual([100, 200, 400, 500, 500, 500]);
    expect(delays(policy({ type: RetryType.LINEAR, interval: 100, maxInterval: 250 }), 4)).toEqual([100, 200, 250, 250]);
    expect(nextRetryDelay(policy({ type: RetryType.CONSTANT, interval: 1000, maxInterval: 300 }), 0)).toBe(300);
    expect(nextRetryDelay(policy({ type: RetryType.EXPONENTIAL, interval: 100, basis: 2, maxInterval: 0 }), 9)).toBe(51_200);
  });

  it("NONE, max_retry 0 and a missing policy mean no retry", () => {
    expect(nextRetryDelay(policy({ type: RetryType.NONE, maxRetry: 5 }), 0)).toBeUndefined();
    for (const type of [RetryType.CONSTANT, RetryType.LINEAR, RetryType.EXPONENTIAL])
      expect(nextRetryDelay(policy({ type, maxRetry: 0 }), 0)).toBeUndefined();
    expect(nextRetryDelay(undefined, 0)).toBeUndefined();
  });

  it("no further retry once retried >= max_retry", () => {
    const p = policy({ type: RetryType.LINEAR, interval: 100, maxRetry: 3 });
    expect(nextRetryDelay(p, 0)).toBe(100);
    expect(nextRetryDelay(p, 2)).toBe(300);
    expect(nextRetryDelay(p, 3)).toBeUndefined();
    expect(nextRetryDelay(p, 4)).toBeUndefined();
  });

  it("the default policy: EXPONENTIAL 3000 ms, basis 2, cap 60000, 3 retries", () => {
    expect(delays(defaultRetryPolicy(), 4)).toEqual([3000, 6000, 12000, undefined]);
  });
});

describe("totalRetryDelay", () => {
  it("sums the delays of every allowed retry", () => {
    expect(totalRetryDelay(policy({ type: RetryType.CONSTANT, interval: 100, maxRetry: 3 }))).toBe(300);
    expect(totalRetryDelay(policy({ type: RetryType.LINEAR, interval: 100, maxRetry: 3 }))).toBe(600);
    expect(totalRetryDelay(policy({ type: RetryType.EXPONENTIAL, interval: 100, basis: 2, maxInterval: 500, maxRetry: 5 }))).toBe(
      100 + 200 + 400 + 500 + 500,
    );
    expect(totalRetryDelay(defaultRetryPolicy())).toBe(21_000);
  });

  it("is 0 without retries", () => {
    expect(totalRetryDelay(undefined)).toBe(0);
    expect(totalRetryDelay(policy({ type: RetryType.NONE, maxRetry: 5 }))).toBe(0);
    expect(totalRetryDelay(policy({ type: RetryType.CONSTANT, maxRetry: 0 }))).toBe(0);
  });

  it("terminates quickly for max_retry = 4294967295 (uint32 max)", () => {
    const t0 = performance.now();
    const constant = totalRetryDelay(policy({ type: RetryType.CONSTANT, interval: 10, maxRetry: 4294967295 }));
    const capped = totalRetryDelay(policy({ type: RetryType.EXPONENTIAL, interval: 10, basis: 2, maxInterval: 1000, maxRetry: 4294967295 }));
    const uncapped = totalRetryDelay(policy({ type: RetryType.EXPONENTIAL, interval: 1000, basis: 2, maxRetry: 4294967295 }));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(Number.isFinite(constant)).toBe(true);
    expect(constant).toBeGreaterThanOrEqual(10 * 1000); // a bound, not a truncation to a handful of retries
    expect(Number.isFinite(capped)).toBe(true);
    expect(capped).toBeGreaterThan(1000);
    // each delay saturates at u32 max (as jobworkerp-rs) and the sum is bounded: huge but finite
    expect(uncapped).toBeGreaterThan(1e12);
    expect(Number.isFinite(uncapped)).toBe(true);
  });
});
