// Child process of bench/scalable.ts for the BullMQ side (run with `node bin/run-ts.mjs bench/bullmq_child.ts`).
//   worker  <redisUrl> <queue> <concurrency>   a BullMQ Worker with a no-op processor
//   produce <redisUrl> <queue>                  a BullMQ Queue that adds jobs when told to
// Talks to the parent over IPC. The worker reports, per pass, what BullMQ itself recorded on each job:
// job.timestamp (set by Queue.add), job.processedOn (set when the job moved to active) and job.finishedOn
// (set when it moved to completed).
import { Queue, Worker, type Job } from "bullmq";

type ToChild = { cmd: "reset" } | { cmd: "report" } | { cmd: "produce"; n: number; inflight: number; payload: string } | { cmd: "close" };

const [role, url, queueName, concurrency] = process.argv.slice(2);
const u = new URL(url);
const connection = { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null };
const send = (m: object) => process.send!(m);

async function worker() {
  let latencies: number[] = [];
  let completed = 0;
  let failed = 0;
  let firstStart = Infinity;
  let lastFinish = 0;
  const w = new Worker(
    queueName,
    async (job: Job) => {
      // the no-op work; the bookkeeping below is all this process adds to BullMQ's own path
      latencies.push(job.processedOn! - job.timestamp);
      if (job.processedOn! < firstStart) firstStart = job.processedOn!;
    },
    { connection, concurrency: Number(concurrency) },
  );
  w.on("completed", (job) => {
    completed++;
    if (job.finishedOn! > lastFinish) lastFinish = job.finishedOn!;
  });
  w.on("failed", () => failed++);
  w.on("error", (e) => console.error("bullmq worker error", e));
  // progress for the parent's "all done?" check, only when it changed
  let sent = -1;
  setInterval(() => {
    if (completed + failed !== sent) send({ type: "progress", completed, failed }), (sent = completed + failed);
  }, 20).unref();
  process.on("message", async (m: ToChild) => {
    if (m.cmd === "reset") {
      latencies = [];
      completed = failed = 0;
      sent = -1;
      firstStart = Infinity;
      lastFinish = 0;
      send({ type: "reset" });
    } else if (m.cmd === "report") {
      send({ type: "report", latencies, completed, failed, firstStart, lastFinish });
    } else if (m.cmd === "close") {
      await w.close();
      process.exit(0);
    }
  });
  await w.waitUntilReady();
  send({ type: "ready" });
}

async function producer() {
  // Completed/failed jobs are removed at once: the benchmark's jobs keep no results (as the NOOP worker stores none).
  const q = new Queue(queueName, { connection, defaultJobOptions: { removeOnComplete: true, removeOnFail: true } });
  process.on("message", async (m: ToChild) => {
    if (m.cmd === "produce") {
      // `inflight` concurrent Queue.add calls (like h2load's concurrent Enqueue streams on our side)
      let next = 0;
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: m.inflight }, async () => {
          while (next < m.n) {
            next++;
            await q.add("noop", { payload: m.payload });
          }
        }),
      );
      send({ type: "produced", t0, t1: Date.now() });
    } else if (m.cmd === "close") {
      await q.close();
      process.exit(0);
    }
  });
  await q.waitUntilReady();
  send({ type: "ready" });
}

(role === "worker" ? worker() : producer()).catch((e) => {
  console.error(e);
  process.exit(1);
});
