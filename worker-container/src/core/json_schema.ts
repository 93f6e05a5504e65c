// JSON Schema of a protobuf message as protobuf JSON accepts it: what LLM tools, FunctionService and MCP
// clients see instead of the runners' proto texts.
import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";

export type JsonSchema = Record<string, unknown>;

const MAX_DEPTH = 8;

function scalarSchema(t: ScalarType): JsonSchema {
  switch (t) {
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return { type: "number" };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      // protobuf JSON also takes 64-bit integers as strings
      return { type: ["integer", "string"] };
    default:
      return { type: "integer" };
  }
}

const enumSchema = (e: DescEnum): JsonSchema => ({ type: "string", enum: e.values.map((v) => v.name) });

function fieldSchema(f: DescField, depth: number, seen: Set<string>): JsonSchema {
  const item = (kind: "scalar" | "enum" | "message", scalar?: ScalarType, en?: DescEnum, msg?: DescMessage): JsonSchema =>
    kind === "scalar" ? scalarSchema(scalar!) : kind === "enum" ? enumSchema(en!) : messageSchema(msg!, depth + 1, seen);
  switch (f.fieldKind) {
    case "scalar":
      return scalarSchema(f.scalar);
    case "enum":
      return enumSchema(f.enum);
    case "message":
      return messageSchema(f.message, depth + 1, seen);
    case "list":
      return { type: "array", items: item(f.listKind, f.scalar, f.enum, f.message) };
    case "map":
      return { type: "object", additionalProperties: item(f.mapKind, f.scalar, f.enum, f.message) };
  }
}

/** JSON Schema of a message (proto field names; one field of a oneof at most). */
export function messageSchema(desc: DescMessage, depth = 0, seen = new Set<string>()): JsonSchema {
  // recursive messages and very deep trees are left open
  if (depth > MAX_DEPTH || seen.has(desc.typeName)) return { type: "object" };
  const inner = new Set(seen).add(desc.typeName);
  const properties: Record<string, JsonSchema> = {};
  for (const f of desc.fields) properties[f.name] = fieldSchema(f, depth, inner);
  const s: JsonSchema = { type: "object", properties };
  const oneofs = desc.oneofs.filter((o) => !o.fields.every((f) => f.proto.proto3Optional));
  if (oneofs.length) s.description = oneofs.map((o) => `set at most one of: ${o.fields.map((f) => f.name).join(", ")}`).join("; ");
  return s;
}
