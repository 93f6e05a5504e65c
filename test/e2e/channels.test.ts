// Channel concurrency and priority ordering.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { shArgs } from "../helpers/client.js";
import { createCommandWorker, sleep, useServer, waitUntil } from "../helpers/fixture.js";

const fx = useServer({
  env: { WORKER_CHANNELS: "single", WORKER_CHANNEL_CONCURRENCIES: "1", WORKER_DEFAULT_CONCURRENCY: "4" },
});

interface Span {
  label: string;
  start: number;
  end: number;
}

/** A job script that records its own start/end times (ms) into DIR/LABEL.span. */
const spanScript = (dir: string, label: string, sleepSec: number) =>
  `s=$(date +%s%3N); sleep ${sleepSec}; e=$(date +%s%3N); echo "$s $e" > '${path.join(dir, `${label}.span`)}'`;

function readSpans(dir: string, labels: string[]): Span[] {
  return labels.map((label) => {
    const [start, end] = fs.readFileSync(path.join(dir, `${label}.span`), "utf8").trim().split(" ").map(Number);
    return { label, start, end };
  });
}

/** Highest number of spans running at the same instant. */
function maxOverlap(spans: Span[]): number {
  const ev = spans.flatMap((s) => [
    { t: s.start, d: 1 },
    { t: s.end, d: -1 },
  ]);
  ev.sort((a, b) => a.t - b.t || a.d - b.d); // an end at t frees the slot before a start at t
  let cur = 0;
  let max = 0;
  for (const e of ev) max = Math.max(max, (cur += e.d));
  return max;
}

describe("channels", () => {
  it("a concurrency-1 channel runs its jobs one at a time", async () => {
    const dir = fs.mkdtempSync(path.join(fx.server.tmpDir, "single-"));
    const workerId = await createCommandWorker(fx.api, { response_type: "DIRECT", channel: "single" });
    const labels = ["a", "b", "c"];
    const results = await Promise.all(
      labels.map((l) =>
        fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(spanScript(dir, l, 0.3)) }, { timeoutMs: 15_000 }),
      ),
    );
    for (const r of results) expect(r.response.result?.data.status).toBe("SUCCESS");
    const spans = readSpans(dir, labels).sort((x, y) => x.start - y.start);
    for (let i = 1; i < spans.length; i++) {
      expect(spans[i].start, `${spans[i].label} started before ${spans[i - 1].label} ended`).toBeGreaterThanOrEqual(spans[i - 1].end);
    }
    expect(maxOverlap(spans)).toBe(1);
  });

  it("the default channel (WORKER_DEFAULT_CONCURRENCY=4) runs 4 jobs at once, not 5", async () => {
    const dir = fs.mkdtempSync(path.join(fx.server.tmpDir, "default-"));
    const workerId = await createCommandWorker(fx.api, { response_type: "DIRECT" });
    const labels = ["j1", "j2", "j3", "j4", "j5"];
    const t0 = Date.now();
    const results = await Promise.all(
      labels.map((l) =>
        fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(spanScript(dir, l, 0.6)) }, { timeoutMs: 15_000 }),
      ),
    );
    const elapsed = Date.now() - t0;
    for (const r of results) expect(r.response.result?.data.status).toBe("SUCCESS");
    const spans = readSpans(dir, labels);
    expect(maxOverlap(spans), `spans: ${JSON.stringify(spans)}`).toBe(4);
    expect(elapsed, "5 jobs of 0.6 s with 4 slots take two rounds").toBeGreaterThanOrEqual(1150);
    expect(elapsed).toBeLessThan(3000);
  });

  it("HIGH-priority jobs queued behind a blocker run before LOW ones (FIFO within a priority)", async () => {
    const log = path.join(fx.server.tmpDir, "priority-order.log");
    const go = path.join(fx.server.tmpDir, "priority-go");
    const workerId = await createCommandWorker(fx.api, { response_type: "NO_RESULT", channel: "single" });
    // the blocker holds the only slot until every other job is queued (however slow the machine is)
    const blocker = await fx.api.job.Enqueue({
      worker_id: { value: workerId },
      args: shArgs(`echo blocker >> '${log}'; while [ ! -f '${go}' ]; do sleep 0.02; done`),
    });
    // make sure the blocker occupies the only slot before the others are queued
    await waitUntil(async () => (await fx.api.jobStatus.Find(blocker.response.id)).response.status === "RUNNING", {
      timeoutMs: 3000,
      what: "blocker RUNNING",
    });
    const enqueue = (label: string, priority: string) =>
      fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`echo ${label} >> '${log}'`), priority });
    for (const l of ["L1", "L2", "L3"]) await enqueue(l, "PRIORITY_LOW");
    for (const h of ["H1", "H2", "H3"]) await enqueue(h, "PRIORITY_HIGH");
    await enqueue("M1", "PRIORITY_MEDIUM");
    fs.writeFileSync(go, "");
    const lines = await waitUntil(
      () => {
        const l = fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : [];
        return l.length >= 8 ? l : null;
      },
      { timeoutMs: 8000, what: "8 jobs done" },
    );
    expect(lines).toEqual(["blocker", "H1", "H2", "H3", "M1", "L1", "L2", "L3"]);
    await sleep(100);
  });
});
