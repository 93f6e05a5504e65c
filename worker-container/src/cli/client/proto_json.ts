// JSON <-> protobuf bytes with a runner's *served* proto text, compiled at runtime with protobufjs.
// protobufjs' fromObject silently drops unknown fields and coerces wrong scalars ("abc" -> 0), so the
// JSON is checked against the type first: a typo in a field name is an error, not a lost setting.
import protobuf from "protobufjs";
import { UsageError } from "./errors.js";

type Json = unknown;
const compiled = new Map<string, protobuf.Type>();

/** The message `name` of a proto text, or its first top-level message (what the text is about). */
export function messageType(text: string, name?: string): protobuf.Type {
  const key = `${name ?? ""}\u0000${text}`;
  let t = compiled.get(key);
  if (!t) {
    const parsed = protobuf.parse(text, { keepCase: true });
    parsed.root.resolveAll();
    const ns = (parsed.package ? parsed.root.lookup(parsed.package) : parsed.root) as protobuf.Namespace;
    const found = name ? ns.lookupType(name) : ns.nestedArray.find((n): n is protobuf.Type => n instanceof protobuf.Type);
    if (!found) throw new Error("the served proto text has no message");
    t = found;
    compiled.set(key, t);
  }
  return t;
}

const INT_TYPES = new Set(["int32", "uint32", "sint32", "fixed32", "sfixed32", "int64", "uint64", "sint64", "fixed64", "sfixed64"]);

/** The field for a JSON key: the proto name, or its lowerCamelCase JSON name. */
function fieldFor(type: protobuf.Type, key: string): protobuf.Field | undefined {
  return type.fields[key] ?? type.fieldsArray.find((f) => camel(f.name) === key);
}
const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function checkScalar(f: protobuf.Field, v: Json, path: string): void {
  const bad = (what: string) => new UsageError(`${path}: expected ${what}, got ${JSON.stringify(v)}`);
  if (f.resolvedType instanceof protobuf.Enum) {
    const e = f.resolvedType;
    if (typeof v === "string" ? !(v in e.values) : !(typeof v === "number" && Object.values(e.values).includes(v))) {
      throw bad(`one of ${Object.keys(e.values).join(", ")}`);
    }
  } else if (f.resolvedType instanceof protobuf.Type) {
    checkMessage(f.resolvedType, v, path);
  } else if (INT_TYPES.has(f.type)) {
    if (!(typeof v === "number" ? Number.isInteger(v) : typeof v === "string" && /^-?\d+$/.test(v))) throw bad(`an integer (${f.type})`);
    if (f.type.startsWith("u") && String(v).startsWith("-")) throw bad(`a non-negative integer (${f.type})`);
  } else if (f.type === "double" || f.type === "float") {
    if (typeof v !== "number" && !(typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v)))) throw bad("a number");
  } else if (f.type === "bool") {
    if (typeof v !== "boolean") throw bad("true or false");
  } else if (f.type === "string") {
    if (typeof v !== "string") throw bad("a string");
  } else if (f.type === "bytes") {
    if (typeof v !== "string") throw bad("a base64 string");
  }
}

function checkMessage(type: protobuf.Type, v: Json, path: string): void {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new UsageError(`${path || "value"}: expected a JSON object (${type.name})`);
  const seenOneofs = new Map<string, string>();
  for (const [key, value] of Object.entries(v)) {
    const f = fieldFor(type, key);
    const at = path ? `${path}.${key}` : key;
    if (!f) throw new UsageError(`${at}: no such field in ${type.name} (fields: ${type.fieldsArray.map((x) => x.name).join(", ")})`);
    if (value === null) continue;
    if (f.partOf && f.partOf.oneof.length > 1) {
      const other = seenOneofs.get(f.partOf.name);
      if (other) throw new UsageError(`${at}: only one of ${other} and ${key} may be set`);
      seenOneofs.set(f.partOf.name, key);
    }
    if (f.map) {
      if (typeof value !== "object" || Array.isArray(value)) throw new UsageError(`${at}: expected a JSON object (map)`);
      for (const [k, mv] of Object.entries(value as object)) checkScalar(f, mv, `${at}.${k}`);
    } else if (f.repeated) {
      if (!Array.isArray(value)) throw new UsageError(`${at}: expected a JSON array`);
      value.forEach((item, i) => checkScalar(f, item, `${at}[${i}]`));
    } else {
      checkScalar(f, value, at);
    }
  }
}

/** Renames lowerCamelCase keys to the proto field names protobufjs (keepCase) expects. */
function toProtoNames(type: protobuf.Type, v: Record<string, Json>): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(v)) {
    const f = fieldFor(type, key)!;
    const sub = f.resolvedType instanceof protobuf.Type ? f.resolvedType : undefined;
    const conv = (x: Json) => (sub && x && typeof x === "object" ? toProtoNames(sub, x as Record<string, Json>) : x);
    if (value === null) continue;
    out[f.name] = f.map
      ? Object.fromEntries(Object.entries(value as object).map(([k, x]) => [k, conv(x)]))
      : f.repeated
        ? (value as Json[]).map(conv)
        : conv(value);
  }
  return out;
}

/** Parses a JSON text given for `what` (e.g. "--args"); a syntax error is a usage error. */
export function parseJson(text: string, what: string): Json {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Encodes a JSON value as the message `type` (checked strictly; see above). */
export function encodeJson(type: protobuf.Type, value: Json, what: string): Uint8Array {
  try {
    checkMessage(type, value, "");
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`${what}: ${e.message}`);
    throw e;
  }
  return type.encode(type.fromObject(toProtoNames(type, value as Record<string, Json>))).finish();
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: String, defaults: true };

/** Decodes bytes of `type` into plain JSON (int64 as strings, enums by name, bytes as base64). */
export function decodeToJson(type: protobuf.Type, bytes: Uint8Array): Record<string, Json> {
  return type.toObject(type.decode(bytes), TO_OBJECT);
}
