// Args protos for MCP tools, generated at runtime from each tool's JSON input schema. One plan drives three
// things: the .proto text served in method_proto_map, a DescMessage (from a FileDescriptorProto built here)
// to decode a job's args, and the conversion of the decoded message back to the JSON the tool expects.
//
// JSON Schema → proto3 mapping (per property of an `object` schema, in property order, numbered from 1):
//   string                          → string          (enums stay strings; allowed values go in the comment)
//   integer                         → int64           (sent to the tool as a JSON number)
//   number                          → double
//   boolean                         → bool
//   object with `properties`        → nested message (same rules, recursively)
//   array of any of the above       → repeated <that type>
//   anything else (free-form object, anyOf/oneOf/$ref, arrays of arrays, several types)
//                                   → string holding JSON text: sent as the parsed value, or as the string
//                                     itself when it is not valid JSON
//   type "null"                     → no field
// A property not listed in `required` is `optional` (proto3 presence), so an unset value is left out of the
// call and the tool applies its own default; required scalars are always sent (zero values included).
// Property names that are not proto identifiers are sanitised (the JSON keeps the original name).
import { create, fromBinary, toJson, type DescMessage, createFileRegistry } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  type DescriptorProto,
  type FieldDescriptorProto,
} from "@bufbuild/protobuf/wkt";

export const ARGS_PACKAGE = "jobworkerp.runner.mcp";

type JsonSchema = Record<string, unknown>;
type Scalar = "string" | "int64" | "double" | "bool";

interface FieldPlan {
  jsonName: string;
  protoName: string;
  number: number;
  kind: Scalar | "message" | "json";
  repeated: boolean;
  optional: boolean;
  required: boolean;
  message?: MessagePlan;
  comment?: string;
}

interface MessagePlan {
  name: string;
  fields: FieldPlan[];
}

export interface ToolArgs {
  /** .proto source text served as the method's args_proto. */
  protoText: string;
  schema: DescMessage;
  /** Decoded args message → the tool's JSON arguments. */
  toArguments(bytes: Uint8Array): Record<string, unknown>;
}

const SCALAR_TYPES: Record<string, Scalar> = { string: "string", integer: "int64", number: "double", boolean: "bool" };
const DESCRIPTOR_TYPE: Record<Scalar, FieldDescriptorProto_Type> = {
  string: FieldDescriptorProto_Type.STRING,
  int64: FieldDescriptorProto_Type.INT64,
  double: FieldDescriptorProto_Type.DOUBLE,
  bool: FieldDescriptorProto_Type.BOOL,
};

/** "get-sum" → "GetSum"; never empty, never starting with a digit. */
export function pascalCase(name: string): string {
  const s = name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join("");
  return /^[A-Za-z]/.test(s) ? s : `T${s}`;
}

function identifier(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_]/g, "_");
  return /^[A-Za-z]/.test(s) ? s : `f_${s}`;
}

/** The one type of a schema, or undefined when it has none or several (→ JSON text). */
function typeOf(s: JsonSchema): string | undefined {
  const t = s.type;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const nonNull = t.filter((x) => x !== "null");
    return nonNull.length === 1 && typeof nonNull[0] === "string" ? nonNull[0] : undefined;
  }
  if (s.properties && typeof s.properties === "object") return "object";
  return undefined;
}

const isObj = (v: unknown): v is JsonSchema => typeof v === "object" && v !== null && !Array.isArray(v);

function describe(s: JsonSchema): string | undefined {
  const parts: string[] = [];
  if (typeof s.description === "string" && s.description) parts.push(s.description);
  if (Array.isArray(s.enum)) parts.push(`one of: ${s.enum.map((v) => JSON.stringify(v)).join(", ")}`);
  if (s.default !== undefined) parts.push(`default: ${JSON.stringify(s.default)}`);
  return parts.length ? parts.join("; ") : undefined;
}

function planMessage(name: string, schema: JsonSchema): MessagePlan {
  const props = isObj(schema.properties) ? schema.properties : {};
  const required = new Set(Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === "string") : []);
  const used = new Set<string>();
  const nestedNames = new Set<string>([name]);
  const fields: FieldPlan[] = [];
  for (const [jsonName, raw] of Object.entries(props)) {
    const prop = isObj(raw) ? raw : {};
    let t = typeOf(prop);
    if (t === "null") continue;
    let protoName = identifier(jsonName);
    while (used.has(protoName)) protoName += "_";
    used.add(protoName);
    const field: FieldPlan = {
      jsonName,
      protoName,
      number: fields.length + 1,
      kind: "json",
      repeated: false,
      optional: !required.has(jsonName),
      required: required.has(jsonName),
      comment: describe(prop),
    };
    let item = prop;
    if (t === "array") {
      field.repeated = true;
      field.optional = false;
      item = isObj(prop.items) ? prop.items : {};
      t = typeOf(item);
      if (t === "array") t = undefined; // arrays of arrays: each element as JSON text
    }
    if (t && SCALAR_TYPES[t]) field.kind = SCALAR_TYPES[t];
    else if (t === "object" && isObj(item.properties) && Object.keys(item.properties).length > 0) {
      let nested = pascalCase(jsonName);
      while (nestedNames.has(nested)) nested += "_";
      nestedNames.add(nested);
      field.kind = "message";
      field.optional = false; // messages always have presence
      field.message = planMessage(nested, item);
    }
    fields.push(field);
  }
  return { name, fields };
}

// ------------------------------------------------------------------ .proto text

const comment = (text: string | undefined, indent: string) =>
  text ? text.split(/\r?\n/).map((l) => `${indent}// ${l}`.trimEnd()).join("\n") + "\n" : "";

function messageText(m: MessagePlan, indent: string): string {
  let out = `${indent}message ${m.name} {\n`;
  const inner = indent + "  ";
  for (const f of m.fields) if (f.message) out += messageText(f.message, inner);
  for (const f of m.fields) {
    const type = f.kind === "message" ? f.message!.name : f.kind === "json" ? "string" : f.kind;
    const label = f.repeated ? "repeated " : f.optional ? "optional " : "";
    const note = f.kind === "json" ? (f.comment ? `${f.comment} (JSON text)` : "JSON text") : f.comment;
    out += comment(note, inner) + `${inner}${label}${type} ${f.protoName} = ${f.number};\n`;
  }
  return out + `${indent}}\n`;
}

// ------------------------------------------------------------------ descriptor

function descriptor(m: MessagePlan, scope: string): Partial<DescriptorProto> {
  const fullName = `${scope}.${m.name}`;
  const oneofDecl: { name: string }[] = [];
  const field: Partial<FieldDescriptorProto>[] = m.fields.map((f) => {
    const fd: Partial<FieldDescriptorProto> = {
      name: f.protoName,
      number: f.number,
      label: f.repeated ? FieldDescriptorProto_Label.REPEATED : FieldDescriptorProto_Label.OPTIONAL,
      type: f.kind === "message" ? FieldDescriptorProto_Type.MESSAGE : DESCRIPTOR_TYPE[f.kind === "json" ? "string" : f.kind],
      jsonName: f.protoName,
    };
    if (f.kind === "message") fd.typeName = `.${fullName}.${f.message!.name}`;
    if (f.optional) {
      // proto3 `optional` is a synthetic oneof holding the one field
      fd.proto3Optional = true;
      fd.oneofIndex = oneofDecl.length;
      oneofDecl.push({ name: `_${f.protoName}` });
    }
    return fd;
  });
  const nestedType = m.fields.filter((f) => f.message).map((f) => descriptor(f.message!, fullName));
  return { name: m.name, field, nestedType, oneofDecl } as Partial<DescriptorProto>;
}

// ------------------------------------------------------------------ message JSON → tool JSON

function fromJsonText(v: unknown): unknown {
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

function convertValue(f: FieldPlan, v: unknown): unknown {
  if (f.kind === "int64") {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  if (f.kind === "json") return fromJsonText(v);
  if (f.kind === "message") return convertMessage(f.message!, v as Record<string, unknown>);
  return v;
}

function convertMessage(m: MessagePlan, json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of m.fields) {
    const v = json[f.protoName];
    if (v === undefined || v === null) continue;
    if (f.repeated && !f.required && (v as unknown[]).length === 0) continue; // unset: the tool's default applies
    out[f.jsonName] = f.repeated ? (v as unknown[]).map((x) => convertValue(f, x)) : convertValue(f, v);
  }
  return out;
}

/** Build the args proto of one tool (`serverName` only appears in the comment). */
export function toolArgs(serverName: string, toolName: string, inputSchema: unknown): ToolArgs {
  const plan = planMessage(`${pascalCase(toolName)}Args`, isObj(inputSchema) ? inputSchema : {});
  const protoText =
    `syntax = "proto3";\n\n` +
    `// Args of tool "${toolName.replace(/[\r\n]/g, " ")}" of MCP server "${serverName.replace(/[\r\n]/g, " ")}", generated from its JSON input schema.\n` +
    `package ${ARGS_PACKAGE};\n\n` +
    messageText(plan, "");
  const fileName = `jobworkerp/runner/mcp/${identifier(serverName)}/${identifier(toolName)}.proto`;
  const file = create(FileDescriptorProtoSchema, {
    name: fileName,
    package: ARGS_PACKAGE,
    syntax: "proto3",
    messageType: [descriptor(plan, ARGS_PACKAGE)],
  } as Parameters<typeof create<typeof FileDescriptorProtoSchema>>[1]);
  const schema = createFileRegistry(file, () => undefined).getMessage(`${ARGS_PACKAGE}.${plan.name}`);
  if (!schema) throw new Error(`could not build the args message of tool ${toolName}`);
  return {
    protoText,
    schema,
    toArguments(bytes) {
      const msg = fromBinary(schema, bytes);
      const json = toJson(schema, msg, { useProtoFieldName: true, alwaysEmitImplicit: true }) as Record<string, unknown>;
      return convertMessage(plan, json);
    },
  };
}
