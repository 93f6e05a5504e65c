// Expressions: `${…}` is jq (jq-wasm, pinned), `$${…}` is a Liquid template whose text is coerced to a number
// or boolean when it reads as one. Free-form values (set, arguments, with.*) are templates: only string leaves
// that are wholly an expression are evaluated. Fields that are expressions by definition (if, input.from,
// output.as, export.as, for.in, while, when…) are jq even without `${}`.
import { loadJq, type Jq } from "jq-wasm";
import { Liquid, type Template } from "liquidjs";
import { WorkflowError } from "./errors.js";

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
// `.`, `.a.b[0]`, `$x.a` and literals are evaluated here: they are most expressions in practice and jq-wasm
// costs ~1 ms per call. Anything the fast path is unsure about (type mismatches) goes to jq, which gives the
// error jq gives.
const SIMPLE_RE = /^\s*(\.|\$[A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[\d+\])*)\s*$/;
const SIMPLE_DOT_RE = /^\s*\.((?:[A-Za-z_]\w*)(?:\.[A-Za-z_]\w*|\[\d+\])*)\s*$/;
const STEP_RE = /\.([A-Za-z_]\w*)|\[(\d+)\]/g;
const NO_FAST = Symbol("no fast path");

function walk(root: unknown, path: string): unknown {
  let v = root;
  for (const m of path.matchAll(STEP_RE)) {
    if (v === null || v === undefined) return null;
    if (m[1] !== undefined) {
      if (typeof v !== "object" || Array.isArray(v)) return NO_FAST;
      v = (v as Record<string, unknown>)[m[1]];
    } else {
      if (!Array.isArray(v)) return NO_FAST;
      v = v[Number(m[2])];
    }
    if (v === undefined) v = null;
  }
  return v;
}

function fastEval(program: string, input: unknown, vars: Vars): unknown {
  const t = program.trim();
  if (t === "." || t === "") return input;
  if (t === "null") return null;
  if (t === "true") return true;
  if (t === "false") return false;
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  let m = SIMPLE_DOT_RE.exec(t);
  if (m) return walk(input, "." + m[1]);
  m = SIMPLE_RE.exec(t);
  if (m && m[1] !== ".") {
    const name = m[1].slice(1);
    if (!(name in vars)) return NO_FAST;
    return walk(vars[name], m[2]);
  }
  return NO_FAST;
}

/** Runs a jq program; one result is returned as is, none as null, several as an array. */
export function runJq(program: string, input: unknown, vars: Vars): unknown {
  const fast = fastEval(program, input, vars);
  if (fast !== NO_FAST) {
    jqStats.fast++;
    return fast;
  }
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
    const slow = entries.filter(([, v]) => typeof v === "string" && isJq(v) && fastEval(jqBody(v), input, vars) === NO_FAST);
    if (slow.length > 1) {
      const results = runJqBatch(slow.map(([, v]) => jqBody(v as string)), input, vars);
      const byKey = new Map(slow.map(([k], i) => [k, results[i]]));
      const out: Record<string, unknown> = {};
      for (const [k, v] of entries) out[k] = byKey.has(k) ? byKey.get(k) : evalTemplate(v, input, vars);
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
