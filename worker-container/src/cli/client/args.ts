// Command-line parsing on node:util parseArgs, with jobworkerp-client's flag names and friendly errors.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.js";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;
export type Values = Record<string, string | boolean | undefined>;

/** Options every subcommand accepts. */
const COMMON: OptionSpec = { json: { type: "boolean" }, help: { type: "boolean", short: "h" } };

/** Parses a subcommand's flags; unknown flags and stray positionals are usage errors. */
export function parseFlags(argv: string[], options: OptionSpec, usage: string): Values {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...COMMON, ...options }, strict: true, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    return values as Values;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    // parseArgs' messages are clear but long; keep their first sentence
    throw new UsageError(`${(e as Error).message.split(/\. (?=[A-Z])/)[0].replace(/\.$/, "")}\n${usage}`);
  }
}

export function required(v: Values, name: string, usage: string): string {
  const x = v[name];
  if (typeof x !== "string" || x === "") throw new UsageError(`missing required flag --${name}\n${usage}`);
  return x;
}

export const str = (v: Values, name: string): string | undefined => (typeof v[name] === "string" ? (v[name] as string) : undefined);

/** A non-negative integer flag (ids, ms, counts). */
export function int(v: Values, name: string): number | undefined {
  const x = str(v, name);
  if (x === undefined) return undefined;
  if (!/^\d+$/.test(x) || !Number.isSafeInteger(Number(x))) throw new UsageError(`--${name} must be a non-negative integer, got '${x}'`);
  return Number(x);
}

export function bigId(v: Values, name: string): bigint | undefined {
  const x = str(v, name);
  if (x === undefined) return undefined;
  if (!/^\d+$/.test(x)) throw new UsageError(`--${name} must be a numeric id, got '${x}'`);
  return BigInt(x);
}

export function float(v: Values, name: string): number | undefined {
  const x = str(v, name);
  if (x === undefined) return undefined;
  const n = Number(x);
  if (x.trim() === "" || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${x}'`);
  return n;
}

/** An enum flag given by name (case-insensitive, an optional type prefix allowed, e.g. STREAMING_TYPE_NONE). */
export function enumFlag<T extends number>(v: Values, name: string, values: Record<string, T>): T | undefined {
  const x = str(v, name);
  if (x === undefined) return undefined;
  const key = x.toUpperCase().replace(/-/g, "_");
  if (key in values) return values[key];
  throw new UsageError(`--${name} must be one of ${Object.keys(values).join(", ")}, got '${x}'`);
}

/** A boolean that `--x` sets and `--no-x` clears; undefined when neither is given (update keeps the value). */
export function toggle(v: Values, name: string): boolean | undefined {
  if (v[name] && v[`no-${name}`]) throw new UsageError(`--${name} and --no-${name} contradict each other`);
  if (v[name]) return true;
  if (v[`no-${name}`]) return false;
  return undefined;
}

/** `--x` and `--no-x` boolean options for each name. */
export function toggles(...names: string[]): OptionSpec {
  return Object.fromEntries(names.flatMap((n) => [[n, { type: "boolean" }], [`no-${n}`, { type: "boolean" }]]));
}

/** A point in time: unix milliseconds, an ISO-8601 date, or `+<n>[ms|s|m|h]` from now. */
export function timeFlag(v: Values, name: string, now = Date.now()): bigint | undefined {
  const x = str(v, name);
  if (x === undefined) return undefined;
  if (/^\d+$/.test(x)) return BigInt(x);
  const rel = /^\+(\d+)(ms|s|m|h)?$/.exec(x);
  if (rel) return BigInt(now + Number(rel[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[rel[2] ?? "ms"]!);
  const t = Date.parse(x);
  if (Number.isNaN(t)) throw new UsageError(`--${name} must be unix ms, an ISO-8601 time or +<n>[ms|s|m|h], got '${x}'`);
  return BigInt(t);
}
