// Expressions: `${…}` is jq (jq-wasm, pinned), `$${…}` is a Liquid template whose text is coerced to a number
// or boolean when it reads as one. Free-form values (set, arguments, with.*) are templates: only string leaves
// that are wholly an expression are evaluated. Fields that are expressions by definition (if, input.from,
// output.as, export.as, for.in, while, when…) are jq even without `${}`.
import { loadJq, type Jq } from "jq-wasm";
import { Liquid, type Template } from "liquidjs";
import { WorkflowError } from "./errors.js";
import { evalFast, NOT_FAST } from "./jq_fast.js";

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Vars = Record<string, unknown>;

let jqInstance: Jq | undefined;
let jqLoading: Promise<Jq> | undefined;

/** Loads jq-wasm once per process (expression evaluation is synchronous afterwards). */
export async function ensureJq(): Promise<Jq> {
  if (jqInstance) return jqInstance;
  jqLoading ??= loadJq().then((j) => (jqInstance = j));
  return jqLoading;
}

function jqOrThrow(): Jq {
  if (!jqInstance) throw new Error("jq is not loaded: await ensureJq() first");
  return jqInstance;
}

/** Counters for the benchmark: calls into jq-wasm and the time spent there. */
export const jqStats = { calls: 0, ms: 0, fast: 0 };

const JQ_RE = /^\$\{([\s\S]*)\}$/;
const LIQUID_RE = /^\$\$\{([\s\S]*)\}$/;
const VAR_RE = /\$([A-Za-z_][A-Za-z0-9_]*)/g;
const BUILTIN_VARS = new Set(["ENV", "__loc__", "__prog_args"]);

export const isLiquid = (s: string) => LIQUID_RE.test(s.trim());
export const isJq = (s: string) => !isLiquid(s) && JQ_RE.test(s.trim());
/** The jq body of `${…}` (or the whole text for fields that are expressions by definition). */
export const jqBody = (s: string) => {
  const m = JQ_RE.exec(s.trim());
  return m && !isLiquid(s) ? m[1] : s;
};

/** Variables a jq program refers to (only these are passed to jq: serialising the rest costs time). */
function referencedVars(program: string): string[] {
  const names = new Set<string>();
  for (const m of program.matchAll(VAR_RE)) if (!BUILTIN_VARS.has(m[1])) names.add(m[1]);
  return [...names];
}

// ------------------------------------------------------------------------------ fast path
// jq-wasm costs ~1 ms a call; the common subset (paths, literals, arithmetic, comparisons, construction) is
// evaluated natively in jq_fast.ts, which hands anything it cannot answer exactly as jq would back to jq.
const NO_FAST = NOT_FAST;
const fastEval = evalFast;

/** Runs a jq program; one result is returned as is, none as null, several as an array. */
export function runJq(program: string, input: unknown, vars: Vars): unknown {
  const fast = fastEval(program, input, vars);
  if (fast !== NO_FAST) {
    jqStats.fast++;
    return fast;
  }
  return runJqWasm(program, input, vars);
}

/** Runs a jq program in jq-wasm only (no fast path). */
export function runJqWasm(program: string, input: unknown, vars: Vars): unknown {
  const flags: string[] = [];
  for (const name of referencedVars(program)) {
    if (name in vars) flags.push("--argjson", name, JSON.stringify(vars[name] ?? null));
  }
  const t0 = performance.now();
  try {
    // a string input would be read as JSON text: always hand jq JSON text
    const out = jqOrThrow().json(JSON.stringify(input ?? null), program, flags);
    return fromResults(out);
  } catch (e) {
    throw WorkflowError.of("expression", "expression failed", `${program.trim()}: ${jqMessage(e)}`);
  } finally {
    jqStats.calls++;
    jqStats.ms += performance.now() - t0;
  }
}

function jqMessage(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s*jq: \d+ compile errors?\s*$/, "").replace(/\n\s*/g, " ").trim();
}

/** Compile-checks a jq program without running it; returns the problem or undefined. */
export function jqSyntaxProblem(program: string): string | undefined {
  const flags: string[] = [];
  for (const name of referencedVars(program)) flags.push("--argjson", name, "null");
  try {
    // compiled, never run: the program sits on line 2 of the wrapper so line/column map back easily
    jqOrThrow().json(null, `if false then (\n${program}\n) else null end`, flags);
    return undefined;
  } catch (e) {
    const lines = program.split("\n").length;
    return jqMessage(e)
      .replace(/^jq: error: /, "")
      .replace(/ at <top-level>, line (\d+), column (\d+):.*$/s, (_, l: string, c: string) =>
        Number(l) - 1 > lines ? " at the end of the expression" : ` at line ${Number(l) - 1}, column ${c}`,
      );
  }
}

// ------------------------------------------------------------------------------ Liquid
const liquid = new Liquid({ cache: true });
liquid.registerFilter("json_encode", (v: unknown) => JSON.stringify(v));
liquid.registerFilter("json_decode", (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v));
const templates = new Map<string, Template[]>();

function parseLiquid(body: string): Template[] {
  let t = templates.get(body);
  if (!t) {
    t = liquid.parse(body);
    if (templates.size > 1000) templates.clear();
    templates.set(body, t);
  }
  return t;
}

/** Text that reads as an integer, a float or a boolean becomes one (as jobworkerp does). */
export function coerceLiquid(text: string): unknown {
  const t = text.trim();
  if (/^[+-]?\d+$/.test(t) && Number.isSafeInteger(Number(t))) return Number(t);
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t);
  if (t === "true") return true;
  if (t === "false") return false;
  return text;
}

export function runLiquid(body: string, input: unknown, vars: Vars): unknown {
  try {
    // the input's keys are globals too (they win over variables, except the reserved `secrets`)
    const globals: Record<string, unknown> = { ...vars };
    if (input && typeof input === "object" && !Array.isArray(input)) {
      for (const [k, v] of Object.entries(input)) if (k !== "secrets") globals[k] = v;
    } else globals.raw_input = input;
    return coerceLiquid(liquid.renderSync(parseLiquid(body), globals) as string);
  } catch (e) {
    throw WorkflowError.of("expression", "template failed", `${body}: ${(e as Error).message}`);
  }
}

export function liquidSyntaxProblem(body: string): string | undefined {
  try {
    parseLiquid(body);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

// ------------------------------------------------------------------------------ evaluation entry points
const fromResults = (out: unknown[]) => (out.length === 0 ? null : out.length === 1 ? out[0] : out);

/**
 * Several jq programs over one input in ONE jq call (`[[p1],[p2],…]`): jq-wasm costs ~1 ms a call, mostly
 * fixed. If the batch fails, each runs alone so the error names the failing expression.
 */
export function runJqBatch(programs: string[], input: unknown, vars: Vars): unknown[] {
  if (programs.length < 2) return programs.map((p) => runJq(p, input, vars));
  const flags: string[] = [];
  const names = new Set(programs.flatMap(referencedVars));
  for (const name of names) if (name in vars) flags.push("--argjson", name, JSON.stringify(vars[name] ?? null));
  const program = `[${programs.map((p) => `[(${p}\n)]`).join(",")}]`;
  const t0 = performance.now();
  let out: unknown[][] | undefined;
  try {
    out = jqOrThrow().json(JSON.stringify(input ?? null), program, flags)[0] as unknown[][];
  } catch {
    out = undefined;
  } finally {
    jqStats.calls++;
    jqStats.ms += performance.now() - t0;
  }
  return out ? out.map(fromResults) : programs.map((p) => runJq(p, input, vars));
}

/** A free-form value: strings that are wholly `${…}` / `$${…}` are evaluated, objects and arrays recursively. */
export function evalTemplate(value: unknown, input: unknown, vars: Vars): unknown {
  // objects of several jq leaves (set, arguments…) are evaluated in one jq call
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const entries = Object.entries(value);
    const done = new Map<string, unknown>();
    const slow: [string, string][] = [];
    for (const [k, v] of entries) {
      if (typeof v !== "string" || !isJq(v)) continue;
      const body = jqBody(v);
      const fast = fastEval(body, input, vars);
      if (fast === NO_FAST) slow.push([k, body]);
      else {
        jqStats.fast++;
        done.set(k, fast);
      }
    }
    if (slow.length > 1) {
      const results = runJqBatch(slow.map(([, b]) => b), input, vars);
      slow.forEach(([k], i) => done.set(k, results[i]));
    }
    if (done.size > 0) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of entries) out[k] = done.has(k) ? done.get(k) : evalTemplate(v, input, vars);
      return out;
    }
  }
  return evalTemplateOne(value, input, vars);
}

function evalTemplateOne(value: unknown, input: unknown, vars: Vars): unknown {
  if (typeof value === "string") {
    const t = value.trim();
    const liq = LIQUID_RE.exec(t);
    if (liq) return runLiquid(liq[1], input, vars);
    const jq = JQ_RE.exec(t);
    if (jq) return runJq(jq[1], input, vars);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => evalTemplate(v, input, vars));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = evalTemplate(v, input, vars);
    return out;
  }
  return value;
}

/** A field that is an expression by definition: a bare string is jq; objects are templates. */
export function evalExpr(value: unknown, input: unknown, vars: Vars): unknown {
  if (typeof value !== "string") return evalTemplate(value, input, vars);
  const t = value.trim();
  const liq = LIQUID_RE.exec(t);
  if (liq) return runLiquid(liq[1], input, vars);
  return runJq(jqBody(t), input, vars);
}

/** jobworkerp's truthiness: null false, numbers non-zero, strings/arrays/objects non-empty. */
export function truthy(v: unknown): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (typeof v === "string") return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}
