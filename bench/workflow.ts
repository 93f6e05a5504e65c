// Engine overhead of the WORKFLOW runner (no jobs): a 100-task workflow of `set` tasks with jq expressions,
// and a 1,000-item `for` over a trivial expression. Prints wall time per task and per expression, and the
// share spent inside jq-wasm (expressions of the native jq subset in jq_fast.ts skip jq-wasm: "fast" counts them).
// Run: npm run bench:workflow  (node --import tsx bench/workflow.ts)
import { ensureJq, jqStats } from "../worker-container/src/runners/workflow/expressions.js";
import { prepareWorkflow, runWorkflow } from "../worker-container/src/runners/workflow/workflow.js";

const HEAD = { document: { dsl: "1.0.0", namespace: "bench", name: "engine", version: "1.0.0" } };
const ROUNDS = Number(process.env.ROUNDS ?? 5);

function setWorkflow(n: number) {
  const tasks = Array.from({ length: n }, (_, i) => ({ [`t${i}`]: { set: { n: "${ .n + 1 }", label: `\${ "step-" + (.n | tostring) }` } } }));
  return { ...HEAD, do: tasks };
}

function setWorkflowWasm(n: number) {
  // the same work in forms outside the native subset (`add`, string interpolation): every value goes to jq-wasm
  const tasks = Array.from({ length: n }, (_, i) => ({ [`t${i}`]: { set: { n: "${ [.n, 1] | add }", label: '${ "step-\\(.n)" }' } } }));
  return { ...HEAD, do: tasks };
}

function forWorkflow(items: number) {
  return {
    ...HEAD,
    do: [{ loop: { for: { each: "x", in: `[range(${items})]` }, do: [{ acc: { set: { n: "${ .n + $x }" } } }] } }],
  };
}

function forTrivial(items: number) {
  // `.` and `$x` take the fast path: this measures the engine's own per-iteration cost
  return { ...HEAD, do: [{ loop: { for: { each: "x", in: `[range(${items})]` }, do: [{ acc: { set: { last: "${ $x }" } } }] } }] };
}

async function measure(name: string, def: object, tasks: number, expressions: number) {
  const prepared = await prepareWorkflow({ data: def });
  await runWorkflow(prepared, { input: { n: 0 } }); // warm-up
  let best = Infinity;
  let jqMs = 0;
  let jqCalls = 0;
  let fast = 0;
  for (let r = 0; r < ROUNDS; r++) {
    Object.assign(jqStats, { calls: 0, ms: 0, fast: 0 });
    const t0 = performance.now();
    const out = await runWorkflow(prepared, { input: { n: 0 } });
    const ms = performance.now() - t0;
    if (out.status !== "Completed") throw new Error(`${name}: ${JSON.stringify(out.error)}`);
    if (ms < best) {
      best = ms;
      jqMs = jqStats.ms;
      jqCalls = jqStats.calls;
      fast = jqStats.fast;
    }
  }
  console.log(
    `${name.padEnd(34)} ${best.toFixed(1).padStart(8)} ms  ${((best / tasks) * 1000).toFixed(0).padStart(6)} µs/task  ` +
      `${((best / expressions) * 1000).toFixed(0).padStart(6)} µs/expr  jq ${jqCalls} calls ${(jqMs / best * 100).toFixed(0)}% of wall  fast-path ${fast}`,
  );
}

await ensureJq();
console.log(`best of ${ROUNDS} rounds`);
// 100 tasks × 2 set values (`.n + 1`, `"step-" + (.n | tostring)`: the native jq subset)
await measure("100 set tasks (jq subset, native)", setWorkflow(100), 100, 200);
// the same through jq-wasm (one batched call per task)
await measure("100 set tasks (jq-wasm)", setWorkflowWasm(100), 100, 200);
// 1,000 iterations × 1 set value (`.n + $x`, jq) + the `in` expression
await measure("for 1000 items, jq body", forWorkflow(1000), 1000, 1001);
// 1,000 iterations of a trivial expression (fast path)
await measure("for 1000 items, trivial body", forTrivial(1000), 1000, 1001);
