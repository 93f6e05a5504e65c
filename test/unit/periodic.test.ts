// nextPeriodicRun: the next occurrence of a periodic job, skipping missed slots (no catch-up bursts).
import { describe, expect, it } from "vitest";
import { nextPeriodicRun } from "../../worker-container/src/core/clock.js";

describe("nextPeriodicRun", () => {
  it("is runAfter + interval when that is still in the future", () => {
    expect(nextPeriodicRun(1000n, 100n, 1050n)).toBe(1100n);
    expect(nextPeriodicRun(1000n, 100n, 1099n)).toBe(1100n);
    expect(nextPeriodicRun(1000n, 100n, 500n)).toBe(1100n); // now before runAfter
    expect(nextPeriodicRun(1000n, 100n, 1000n)).toBe(1100n);
  });

  it("skips missed slots: the next slot on the original grid strictly after now", () => {
    expect(nextPeriodicRun(1000n, 100n, 1350n)).toBe(1400n); // 1100, 1200, 1300 missed: no catch-up
    expect(nextPeriodicRun(1000n, 100n, 1101n)).toBe(1200n);
    expect(nextPeriodicRun(1000n, 100n, 1399n)).toBe(1400n);
  });

  it("a now exactly on a slot gives the following slot (strictly > now)", () => {
    expect(nextPeriodicRun(1000n, 100n, 1100n)).toBe(1200n);
    expect(nextPeriodicRun(1000n, 100n, 1400n)).toBe(1500n);
  });

  it("keeps the phase of the original time over a long outage (ms timestamps, one day interval)", () => {
    const DAY = 86_400_000n;
    const runAfter = 1_600_000_000_000n + 9n * 3_600_000n; // some day at 09:00 (relative)
    const now = runAfter + 400n * DAY + 5n * 3_600_000n; // 400 days later, 14:00
    const next = nextPeriodicRun(runAfter, DAY, now);
    expect(next).toBe(runAfter + 401n * DAY); // tomorrow 09:00
  });

  it("holds the invariants for many inputs: on the grid, > now, and no slot skipped that was still ahead", () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return BigInt(seed % n);
    };
    for (let i = 0; i < 2000; i++) {
      const runAfter = 1_700_000_000_000n + rnd(1_000_000);
      const interval = 1n + rnd(10_000);
      const now = runAfter - 5_000n + rnd(200_000);
      const next = nextPeriodicRun(runAfter, interval, now);
      const ctx = `runAfter=${runAfter} interval=${interval} now=${now} → ${next}`;
      if ((next - runAfter) % interval !== 0n) expect.fail(`off the grid: ${ctx}`);
      if (next < runAfter + interval) expect.fail(`before the first slot: ${ctx}`);
      if (next <= now) expect.fail(`not in the future: ${ctx}`);
      // the earliest such slot: the previous one is either not after runAfter or not after now
      const prev = next - interval;
      if (prev > runAfter && prev > now) expect.fail(`skipped a future slot: ${ctx}`);
    }
  });
});
