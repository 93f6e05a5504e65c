// `node bin/run-ts.mjs bench/cpuprofile_top.ts <file.cpuprofile> [top=25]`: where a V8 CPU profile spent its time
// (e.g. a worker profiled by `PROF=/tmp/prof npm run bench:scalable`). Prints self time by package/area, then the
// top functions by self time and by inclusive time (a function counted once per sample, however deep it recurses).
// Samples longer than 100 ms are left out: the process was not running (e.g. frozen by the benchmark's SIGSTOP),
// and the whole gap would be charged to whatever function it stopped in.
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error("usage: cpuprofile_top.ts <file.cpuprofile> [top]");
  process.exit(2);
}
const top = Number(topArg ?? 25);
const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const short = (url: string) => url.replace(/^file:\/\//, "").replace(/^.*\/node_modules\//, "nm:").replace(/^.*\/worker-container\/src\//, "src/");
const key = (n: Node) => `${n.callFrame.functionName || "(anonymous)"} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
function area(n: Node): string {
  const u = n.callFrame.url;
  if (!u) return n.callFrame.functionName.startsWith("(") ? n.callFrame.functionName : "(native/V8)";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (m) return m[1];
  const s = /worker-container\/src\/(.*)\//.exec(u);
  if (s) return `src/${s[1]}`;
  if (u.startsWith("node:")) return u.split("/")[0].replace(/^node:internal/, "node:internal");
  return u;
}

const self = new Map<string, number>();
const areas = new Map<string, number>();
const incl = new Map<string, number>();
let total = 0;
let idle = 0;
let gaps = 0;
const MAX_SAMPLE_US = 100_000;
p.samples.forEach((id, i) => {
  const dt = p.timeDeltas[i] ?? 0;
  if (dt > MAX_SAMPLE_US) {
    gaps += dt;
    return;
  }
  const n = byId.get(id)!;
  total += dt;
  if (n.callFrame.functionName === "(idle)") idle += dt;
  self.set(key(n), (self.get(key(n)) ?? 0) + dt);
  areas.set(area(n), (areas.get(area(n)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = key(byId.get(cur)!);
    if (!seen.has(k)) {
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + dt);
    }
  }
});
const busy = total - idle;
const ms = (us: number) => (us / 1000).toFixed(0).padStart(7);
const pctOf = (us: number) => ((100 * us) / Math.max(1, busy)).toFixed(1).padStart(5);
const show = (title: string, m: Map<string, number>, skip = (_: string) => false) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].filter(([k]) => !skip(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ms ${pctOf(v)}%  ${k}`);
};
console.log(
  `${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (percentages are of busy time); ` +
    `${(gaps / 1e6).toFixed(2)} s in gaps between samples > ${MAX_SAMPLE_US / 1000} ms left out`,
);
show("self time by area", areas, (k) => k === "(idle)");
show("self time by function", self, (k) => k.startsWith("(idle)"));
show("inclusive time by function", incl, (k) => k.startsWith("(root)") || k.startsWith("(idle)"));
