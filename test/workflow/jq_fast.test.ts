// The native jq subset (jq_fast.ts) against jq-wasm itself: every expression on every input must give jq's
// result, or else fall back (never a different value, never a value where jq raises an error).
import { beforeAll, describe, expect, it } from "vitest";
import { ensureJq, runJqWasm } from "../../worker-container/src/runners/workflow/expressions.js";
import { compileFast, evalFast, NOT_FAST } from "../../worker-container/src/runners/workflow/jq_fast.js";

const EXPRS = [
  // paths and literals
  ".", ".a", ".a.b", ".a.b.c", '.["a"]', '."a"', ".arr[0]", ".arr[5]", ".[0]", ".a[0]", "$x", "$obj.a", "$arr[1]", "$nul", "$nul.a",
  "1", "-2.5", "1e3", '"s"', '"esc \\"q\\" \\u00e9 \\n"', "true", "false", "null", "[]", "{}",
  // arithmetic with jq's typing (null + x, string + number errors, object merge …)
  ".n + 1", ".n - 1", ".n * 2", ".n / 4", ".n % 3", "-7 % 3", "7 % -3", "5.5 % 2", ".n / 0", ".n % 0", "1e308 * 10", "0 * -1",
  ".a + .b", ".s + .s", ".s + .n", ".n + .s", "null + .n", ".n + null", "null + null", ".arr + .arr", ".arr + [3]", ".o + {z: 1}", ".o + .o2",
  ".s - .s", ".arr - [1]", '.s * 2', ".o * .o2", '"a" / "b"', ".n - null", "$x + 1", "$s + \"!\"", "1 + 2 * 3", "(1 + 2) * 3", "10 - 4 - 3", "2 * 3 % 4", "1 - -1",
  // comparisons (jq's total order across types; strings by code point)
  ".n == 3", ".n != 3", ".n < 5", ".n <= 3", ".n > .m", ".n >= .m", "1 == 1.0", "null < false", "false < true", "true < 0", "0 < \"\"", '"" < []', "[] < {}",
  '"a" < "b"', '"Z" < "a"', '"\\uffff" < "\\ud83d\\ude00"', "[1,2] < [1,3]", "[1] < [1,0]", '{a: 1} < {b: 0}', '{a: 2} > {a: 1}', '{a: 1, b: 2} == {b: 2, a: 1}', ".arr == [1,2]", ".o == .o2",
  // logic
  ".t and .f", ".t or .f", ".n and .s", "null or false", ".missing or 1", "(.n > 1) and (.n < 5)", ".f | not", ".n | not", "null | not", ".n > 1 and .n < 5 or .s == \"x\"",
  ".missing // 7", ".n // 7", "false // null // 3", ".a.b // \"d\"", ".s.x // 1",
  // length / tostring
  "length", ".s | length", ".arr | length", ".o | length", ".n | length", "-5 | length", "null | length", ".t | length", '"héllo😀" | length', "-1.5 | length",
  ".n | tostring", ".s | tostring", "null | tostring", ".t | tostring", ".f2 | tostring", ".o | tostring", '"step-" + (.n | tostring)',
  // construction
  "{a: .n, b: .s}", "{a, n}", "{$x}", '{"k": 1, k2: .arr[0]}', "{a: .n | tostring}", "{a: -1}", "[.n, .s, .arr[0]]", "[.n + 1, (.s | length)]", "{nested: {deep: [.n, {x: $x}]}}",
  "{a: 1, a: 2}", "[.a, .b] | length",
];

// outside the subset: must never be answered natively
const NOT_SUBSET = [".[]", "..", ".a?", ".arr[1:]", ".arr[-1]", "map(.)", "if . then 1 else 2 end", ".a, .b", ". as $v | $v", "$__loc__", "$ENV", '"\\(.n)"', "{(.s): 1}", "{a: 1 + 2}", "{a: 1,}", "reduce .[] as $i (0; .)", ".a |= 1", "$missing", "# c\n."];

const INPUTS: unknown[] = [
  null,
  { a: { b: { c: 1 } }, n: 3, m: 2, s: "str", t: true, f: false, arr: [1, 2], o: { x: 1, y: [1] }, o2: { y: 2 }, f2: 1.5 },
  { a: 1, b: 2, n: -4.5, m: -4.5, s: "", t: 0, f: null, arr: [], o: {}, o2: {}, f2: 1e-7 },
  { a: "x", b: "y", n: 1e300, s: "é😀", arr: [[1], { a: 1 }], o: { a: null }, o2: { a: [] } },
  [1, 2, 3],
  "text",
  42,
];
const VARS = { x: 3, s: "str", arr: [1, 2], obj: { a: 1 }, nul: null };

function viaJq(program: string, input: unknown): { value?: unknown; error?: string } {
  try {
    return { value: runJqWasm(program, input, VARS) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

beforeAll(async () => {
  await ensureJq();
});

describe("jq fast path", () => {
  it("every expression of the subset parses natively", () => {
    const outside = EXPRS.filter((e) => compileFast(e) === NOT_FAST);
    // these parse but always defer to jq at run time (types jq rejects or that the subset leaves to jq)
    expect(outside).toEqual([]);
  });

  it("gives jq's result on every input, or defers to jq", () => {
    let native = 0;
    const mismatches: string[] = [];
    for (const expr of EXPRS) {
      for (const input of INPUTS) {
        const fast = evalFast(expr, input, VARS);
        if (fast === NOT_FAST) continue;
        native++;
        const jq = viaJq(expr, input);
        if (jq.error !== undefined) mismatches.push(`${expr} on ${JSON.stringify(input)}: fast ${JSON.stringify(fast)}, jq error ${jq.error}`);
        else {
          try {
            expect(fast).toEqual(jq.value);
            expect(Object.is(fast, -0)).toBe(Object.is(jq.value, -0));
          } catch {
            mismatches.push(`${expr} on ${JSON.stringify(input)}: fast ${JSON.stringify(fast)}, jq ${JSON.stringify(jq.value)}`);
          }
        }
      }
    }
    expect(mismatches).toEqual([]);
    // the comparison is not vacuous: most cases are answered natively
    expect(native).toBeGreaterThan(EXPRS.length * 3);
  });

  it("leaves everything outside the subset to jq", () => {
    for (const expr of NOT_SUBSET) expect(evalFast(expr, { a: 1 }, VARS), expr).toBe(NOT_FAST);
  });
});
