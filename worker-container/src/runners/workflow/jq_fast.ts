// A native evaluator for a small, well-defined subset of jq, used before jq-wasm (which costs ~1 ms a call):
// paths (`.a.b`, `.["k"]`, `.[0]`, `$x.a`), literals, `+ - * / %`, comparisons, `and`/`or`, `//`, pipes into
// `not` / `length` / `tostring`, and object / array construction of those. Every expression of the subset
// yields exactly one value. Whenever jq could disagree — a type mismatch (jq raises an error), a number that is
// not finite, a negative or fractional index — evaluation gives up and the caller runs jq-wasm instead, so
// results and errors stay jq's. test/workflow/jq_fast.test.ts runs every form through both evaluators.

type Node =
  | { k: "identity" }
  | { k: "lit"; v: unknown }
  | { k: "var"; name: string }
  | { k: "index"; of: Node; key: string | number }
  | { k: "bin"; op: string; l: Node; r: Node }
  | { k: "pipe"; l: Node; r: Node }
  | { k: "call"; name: "not" | "length" | "tostring" }
  | { k: "obj"; entries: [string | Node, Node][] }
  | { k: "arr"; items: Node[] };

/** Thrown when the subset cannot (or must not) answer: the caller falls back to jq-wasm. */
class GiveUp extends Error {}
const giveUp = (): never => {
  throw new GiveUp();
};

// ------------------------------------------------------------------------------ tokenizer
type Tok = { t: "num"; v: number } | { t: "str"; v: string } | { t: "id"; v: string } | { t: "var"; v: string } | { t: "field"; v: string } | { t: "op"; v: string };

const OPS = ["==", "!=", "<=", ">=", "//", "|", "+", "-", "*", "/", "%", "<", ">", "(", ")", "[", "]", "{", "}", ",", ":", "."];

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "#") giveUp(); // comments: leave to jq
    let m: RegExpExecArray | null;
    const rest = src.slice(i);
    if ((m = /^\d+(\.\d+)?([eE][+-]?\d+)?/.exec(rest))) {
      out.push({ t: "num", v: Number(m[0]) });
      i += m[0].length;
    } else if ((m = /^\.([A-Za-z_][A-Za-z0-9_]*)/.exec(rest))) {
      if (KEYWORDS.has(m[1])) giveUp();
      out.push({ t: "field", v: m[1] });
      i += m[0].length;
    } else if ((m = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(rest))) {
      out.push({ t: "var", v: m[1] });
      i += m[0].length;
    } else if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) {
      if (rest[m[0].length] === ":" && rest[m[0].length + 1] === ":") giveUp(); // module syntax
      out.push({ t: "id", v: m[0] });
      i += m[0].length;
    } else if (c === '"') {
      // plain JSON strings only; `\(…)` interpolation and odd escapes go to jq
      m = /^"((?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*)"/.exec(rest);
      if (!m) giveUp();
      out.push({ t: "str", v: JSON.parse(m![0]) as string });
      i += m![0].length;
    } else {
      const op = OPS.find((o) => rest.startsWith(o));
      if (!op) giveUp();
      // `..`, `?`, `?//`, `=`-family, `.[]`: not in the subset
      if (op === "." && rest[1] === ".") giveUp();
      if (op === "|" && rest[1] === "=") giveUp();
      if ((op === "+" || op === "-" || op === "*" || op === "/" || op === "%" || op === "//") && rest[op.length] === "=") giveUp();
      out.push({ t: "op", v: op! });
      i += op!.length;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------ parser (jq's precedence)
const PRECEDENCE: Record<string, number> = { "//": 1, or: 2, and: 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6 };
const NONASSOC = 4;
const KEYWORDS = new Set(["and", "or", "if", "then", "elif", "else", "end", "as", "def", "reduce", "foreach", "try", "catch", "label", "import", "include", "__loc__"]);

class Parser {
  private p = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok | undefined {
    return this.toks[this.p];
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t !== undefined && t.t === "op" && t.v === v;
  }
  private expect(v: string): void {
    if (!this.isOp(v)) giveUp();
    this.p++;
  }

  parseAll(): Node {
    const n = this.pipe();
    if (this.p !== this.toks.length) giveUp();
    return n;
  }

  private pipe(): Node {
    let l = this.binary(1);
    while (this.isOp("|")) {
      this.p++;
      l = { k: "pipe", l, r: this.binary(1) };
    }
    return l;
  }

  private binOp(): string | undefined {
    const t = this.peek();
    if (!t) return undefined;
    if (t.t === "op" && t.v in PRECEDENCE) return t.v;
    if (t.t === "id" && (t.v === "and" || t.v === "or")) return t.v;
    return undefined;
  }

  /** Precedence climbing; `//` is right-associative, comparisons do not chain. */
  private binary(min: number): Node {
    let l = this.term();
    for (;;) {
      const op = this.binOp();
      if (!op) break;
      const prec = PRECEDENCE[op];
      if (prec < min) break;
      this.p++;
      const r = this.binary(op === "//" ? prec : prec + 1);
      l = { k: "bin", op, l, r };
      if (prec === NONASSOC && this.binOp() !== undefined && PRECEDENCE[this.binOp()!] === NONASSOC) giveUp();
    }
    return l;
  }

  /** An object value: terms joined by pipes (jq's grammar allows no bare operators there). */
  private objectValue(): Node {
    let l = this.term();
    while (this.isOp("|")) {
      this.p++;
      l = { k: "pipe", l, r: this.term() };
    }
    return l;
  }

  private term(): Node {
    const t = this.peek() ?? giveUp();
    let n: Node;
    this.p++;
    if (t.t === "num") n = { k: "lit", v: t.v };
    else if (t.t === "str") n = { k: "lit", v: t.v };
    else if (t.t === "var") {
      if (t.v === "__loc__" || t.v === "ENV") giveUp();
      n = { k: "var", name: t.v };
    } else if (t.t === "field") n = { k: "index", of: { k: "identity" }, key: t.v };
    else if (t.t === "id") {
      if (t.v === "true" || t.v === "false") n = { k: "lit", v: t.v === "true" };
      else if (t.v === "null") n = { k: "lit", v: null };
      else if ((t.v === "not" || t.v === "length" || t.v === "tostring") && !this.isOp("(")) n = { k: "call", name: t.v };
      else return giveUp();
    } else if (t.v === "-") {
      // only a negative number literal
      const num = this.peek();
      if (!num || num.t !== "num") giveUp();
      this.p++;
      n = { k: "lit", v: -(num as { v: number }).v };
    } else if (t.v === ".") {
      n = { k: "identity" };
      const next = this.peek();
      if (next?.t === "str") {
        this.p++;
        n = { k: "index", of: n, key: next.v };
      } else if (this.isOp("[")) n = this.suffixIndex(n);
    } else if (t.v === "(") {
      n = this.pipe();
      this.expect(")");
    } else if (t.v === "[") {
      const items: Node[] = [];
      if (!this.isOp("]")) {
        for (;;) {
          items.push(this.binary(1));
          if (this.isOp(",")) {
            this.p++;
            continue;
          }
          break;
        }
      }
      this.expect("]");
      n = { k: "arr", items };
    } else if (t.v === "{") n = this.object();
    else return giveUp();
    // postfix: .name, ."name", [n], ["k"]
    for (;;) {
      const next = this.peek();
      if (next?.t === "field") {
        this.p++;
        n = { k: "index", of: n, key: next.v };
      } else if (this.isOp(".") && this.toks[this.p + 1]?.t === "str") {
        n = { k: "index", of: n, key: (this.toks[this.p + 1] as { v: string }).v };
        this.p += 2;
      } else if (this.isOp(".") && this.toks[this.p + 1]?.t === "op" && (this.toks[this.p + 1] as { v: string }).v === "[") {
        this.p++;
        n = this.suffixIndex(n);
      } else if (this.isOp("[")) n = this.suffixIndex(n);
      else break;
    }
    return n;
  }

  /** `[0]` or `["k"]` (literal keys only; slices, `[]` and expressions go to jq). */
  private suffixIndex(of: Node): Node {
    this.expect("[");
    const t = this.peek() ?? giveUp();
    if (t.t !== "num" && t.t !== "str") giveUp();
    if (t.t === "num" && !Number.isInteger(t.v)) giveUp();
    this.p++;
    this.expect("]");
    return { k: "index", of, key: t.v as string | number };
  }

  private object(): Node {
    const entries: [string | Node, Node][] = [];
    while (!this.isOp("}")) {
      const t = this.peek() ?? giveUp();
      this.p++;
      if (t.t === "var") {
        if (t.v === "__loc__" || t.v === "ENV") giveUp();
        entries.push([t.v, { k: "var", name: t.v }]);
      } else if (t.t === "id" || t.t === "str") {
        if (t.t === "id" && KEYWORDS.has(t.v)) giveUp();
        if (this.isOp(":")) {
          this.p++;
          entries.push([t.v, this.objectValue()]);
        } else if (t.t === "id") entries.push([t.v, { k: "index", of: { k: "identity" }, key: t.v }]);
        else giveUp();
      } else giveUp();
      if (this.isOp(",")) {
        this.p++;
        if (this.isOp("}")) giveUp(); // a trailing comma: leave it to jq's grammar
      } else if (!this.isOp("}")) giveUp();
    }
    this.p++;
    return { k: "obj", entries };
  }
}

// ------------------------------------------------------------------------------ jq's value semantics
const typeRank = (v: unknown): number =>
  v === null ? 0 : v === false ? 1 : v === true ? 2 : typeof v === "number" ? 3 : typeof v === "string" ? 4 : Array.isArray(v) ? 5 : 6;

/** jq compares strings by their UTF-8 bytes (= code points), not by UTF-16 units as JS does. */
function cmpStrings(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** jq's total order: null < false < true < numbers < strings < arrays < objects. */
export function jqCompare(a: unknown, b: unknown): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  if (typeof a === "number") return a < (b as number) ? -1 : a > (b as number) ? 1 : 0;
  if (typeof a === "string") return cmpStrings(a, b as string);
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    for (let i = 0; i < Math.min(a.length, bb.length); i++) {
      const c = jqCompare(a[i], bb[i]);
      if (c) return c;
    }
    return a.length === bb.length ? 0 : a.length < bb.length ? -1 : 1;
  }
  if (ra === 6) {
    // objects: first by their sorted key lists, then by the values in key order
    const ka = Object.keys(a as object).sort(cmpStrings);
    const kb = Object.keys(b as object).sort(cmpStrings);
    const c = jqCompare(ka, kb);
    if (c) return c;
    for (const k of ka) {
      const v = jqCompare((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]);
      if (v) return v;
    }
  }
  return 0;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const falsy = (v: unknown) => v === null || v === false;
const finite = (n: number) => (Number.isFinite(n) ? n : giveUp());

function arith(op: string, a: unknown, b: unknown): unknown {
  if (op === "+") {
    if (a === null) return b;
    if (b === null) return a;
    if (typeof a === "number" && typeof b === "number") return finite(a + b);
    if (typeof a === "string" && typeof b === "string") return a + b;
    if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
    if (isObject(a) && isObject(b)) return { ...a, ...b };
    return giveUp();
  }
  if (typeof a !== "number" || typeof b !== "number") return giveUp();
  switch (op) {
    case "-":
      return finite(a - b);
    case "*":
      return finite(a * b);
    case "/":
      return b === 0 ? giveUp() : finite(a / b);
    default:
      // `%`: integers only (jq truncates operands; its handling of fractions and huge values varies by version)
      if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b === 0) return giveUp();
      return (a % b) + 0; // no -0
  }
}

function index(v: unknown, key: string | number): unknown {
  if (v === null) return null;
  if (typeof key === "string") {
    if (!isObject(v)) return giveUp();
    return Object.prototype.hasOwnProperty.call(v, key) ? v[key] : null;
  }
  if (!Array.isArray(v) || key < 0) return giveUp();
  return key < v.length ? v[key] : null;
}

function call(name: string, v: unknown): unknown {
  if (name === "not") return falsy(v);
  if (name === "length") {
    if (v === null) return 0;
    if (typeof v === "number") return Math.abs(v);
    if (typeof v === "string") {
      let n = 0;
      for (const _ of v) n++; // code points, as jq counts
      return n;
    }
    if (Array.isArray(v)) return v.length;
    if (isObject(v)) return Object.keys(v).length;
    return giveUp();
  }
  // tostring: strings as they are; other scalars whose JSON text jq and JS write alike
  if (typeof v === "string") return v;
  if (v === null || typeof v === "boolean" || (Number.isSafeInteger(v) && !Object.is(v, -0))) return JSON.stringify(v);
  return giveUp();
}

function evaluate(n: Node, input: unknown, vars: Record<string, unknown>): unknown {
  switch (n.k) {
    case "identity":
      return input;
    case "lit":
      return n.v;
    case "var":
      return Object.prototype.hasOwnProperty.call(vars, n.name) ? (vars[n.name] ?? null) : giveUp();
    case "index":
      return index(evaluate(n.of, input, vars), n.key);
    case "pipe":
      return evaluate(n.r, evaluate(n.l, input, vars), vars);
    case "call":
      return call(n.name, input);
    case "arr":
      return n.items.map((i) => evaluate(i, input, vars));
    case "obj": {
      const out: Record<string, unknown> = {};
      for (const [k, v] of n.entries) out[k as string] = evaluate(v, input, vars);
      return out;
    }
    case "bin": {
      // jq evaluates the right operand first for arithmetic and comparisons; with one output each and no side
      // effects the order only matters for which error wins, and errors go to jq anyway
      if (n.op === "and" || n.op === "or") {
        const l = evaluate(n.l, input, vars);
        if (n.op === "and" && falsy(l)) return false;
        if (n.op === "or" && !falsy(l)) return true;
        return !falsy(evaluate(n.r, input, vars));
      }
      if (n.op === "//") {
        // jq swallows errors on the left of `//`: an error there is not ours to decide
        const l = evaluate(n.l, input, vars);
        return falsy(l) ? evaluate(n.r, input, vars) : l;
      }
      const l = evaluate(n.l, input, vars);
      const r = evaluate(n.r, input, vars);
      switch (n.op) {
        case "==":
          return jqCompare(l, r) === 0;
        case "!=":
          return jqCompare(l, r) !== 0;
        case "<":
          return jqCompare(l, r) < 0;
        case "<=":
          return jqCompare(l, r) <= 0;
        case ">":
          return jqCompare(l, r) > 0;
        case ">=":
          return jqCompare(l, r) >= 0;
        default:
          return arith(n.op, l, r);
      }
    }
  }
}

// ------------------------------------------------------------------------------ entry point
export const NOT_FAST = Symbol("not in the fast subset");
const compiled = new Map<string, Node | typeof NOT_FAST>();

/** The program's AST, or NOT_FAST when it is outside the subset (both cached). */
export function compileFast(program: string): Node | typeof NOT_FAST {
  let c = compiled.get(program);
  if (c === undefined) {
    try {
      c = new Parser(tokenize(program)).parseAll();
    } catch (e) {
      if (!(e instanceof GiveUp)) throw e;
      c = NOT_FAST;
    }
    if (compiled.size > 5000) compiled.clear();
    compiled.set(program, c);
  }
  return c;
}

/** Evaluates a program of the subset; NOT_FAST when it is outside it or jq might answer differently. */
export function evalFast(program: string, input: unknown, vars: Record<string, unknown>): unknown {
  const node = compileFast(program);
  if (node === NOT_FAST) return NOT_FAST;
  try {
    return evaluate(node, input ?? null, vars);
  } catch (e) {
    if (e instanceof GiveUp) return NOT_FAST;
    throw e;
  }
}
