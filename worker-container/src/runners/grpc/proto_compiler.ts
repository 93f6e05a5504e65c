// Compiles a .proto source text into a protobuf-es registry, offline: protobufjs parses the text and this module
// turns its reflection objects into a FileDescriptorProto (protobufjs's own toDescriptor emits relative type
// names and no dependencies, which protobuf-es cannot resolve).
// Only google/protobuf/*.proto imports are supported; they resolve to protobuf-es's bundled well-known types.
import { create, type FileRegistry, type MessageInitShape } from "@bufbuild/protobuf";
import {
  DescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  type FieldDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import protobuf from "protobufjs";
import { RunnerError } from "../runner.js";
import { registryOf } from "./file_set.js";
import { wellKnownFile } from "./well_known.js";

type DescriptorInit = MessageInitShape<typeof DescriptorProtoSchema>;
type FieldInit = MessageInitShape<typeof FieldDescriptorProtoSchema>;

const SCALARS: Record<string, FieldDescriptorProto_Type> = {
  double: FieldDescriptorProto_Type.DOUBLE,
  float: FieldDescriptorProto_Type.FLOAT,
  int64: FieldDescriptorProto_Type.INT64,
  uint64: FieldDescriptorProto_Type.UINT64,
  int32: FieldDescriptorProto_Type.INT32,
  fixed64: FieldDescriptorProto_Type.FIXED64,
  fixed32: FieldDescriptorProto_Type.FIXED32,
  bool: FieldDescriptorProto_Type.BOOL,
  string: FieldDescriptorProto_Type.STRING,
  bytes: FieldDescriptorProto_Type.BYTES,
  uint32: FieldDescriptorProto_Type.UINT32,
  sfixed32: FieldDescriptorProto_Type.SFIXED32,
  sfixed64: FieldDescriptorProto_Type.SFIXED64,
  sint32: FieldDescriptorProto_Type.SINT32,
  sint64: FieldDescriptorProto_Type.SINT64,
};

/** protobufjs full names start with "."; descriptors use the same form. */
const qualified = (o: protobuf.ReflectionObject) => o.fullName;

/** protoc's map entry name: "my_field" → "MyFieldEntry". */
const mapEntryName = (field: string) =>
  field.replace(/(?:^|_)([a-z0-9])/gi, (_, c: string) => c.toUpperCase()).replace(/_/g, "") + "Entry";

function typeOf(f: protobuf.Field, t: string, resolved: protobuf.Type | protobuf.Enum | null): Pick<FieldInit, "type" | "typeName"> {
  const scalar = SCALARS[t];
  if (scalar !== undefined) return { type: scalar };
  if (resolved instanceof protobuf.Enum) return { type: FieldDescriptorProto_Type.ENUM, typeName: qualified(resolved) };
  if (resolved instanceof protobuf.Type) return { type: FieldDescriptorProto_Type.MESSAGE, typeName: qualified(resolved) };
  throw new RunnerError("FATAL_ERROR", `proto source: cannot resolve type ${t} of field ${f.fullName}`);
}

function messageProto(t: protobuf.Type): DescriptorInit {
  const nestedType: DescriptorInit[] = [];
  const enumType = [];
  for (const n of t.nestedArray) {
    if (n instanceof protobuf.Type) nestedType.push(messageProto(n));
    else if (n instanceof protobuf.Enum) enumType.push(enumProto(n));
  }
  // Real oneofs first, proto3-optional synthetic ones last (as protoc orders them).
  const isSynthetic = (o: protobuf.OneOf) => o.fieldsArray.length === 1 && o.fieldsArray[0].options?.proto3_optional === true;
  const oneofs = [...t.oneofsArray.filter((o) => !isSynthetic(o)), ...t.oneofsArray.filter(isSynthetic)];

  const field: FieldInit[] = t.fieldsArray.map((f) => {
    const base: FieldInit = { name: f.name, number: f.id, jsonName: protoCamelCase(f.name) };
    if (f instanceof protobuf.MapField) {
      const entry = mapEntryName(f.name);
      nestedType.push({
        name: entry,
        options: { mapEntry: true },
        field: [
          { name: "key", number: 1, jsonName: "key", label: FieldDescriptorProto_Label.OPTIONAL, ...typeOf(f, f.keyType, null) },
          { name: "value", number: 2, jsonName: "value", label: FieldDescriptorProto_Label.OPTIONAL, ...typeOf(f, f.type, f.resolvedType) },
        ],
      });
      return { ...base, label: FieldDescriptorProto_Label.REPEATED, type: FieldDescriptorProto_Type.MESSAGE, typeName: `${qualified(t)}.${entry}` };
    }
    const out: FieldInit = {
      ...base,
      label: f.repeated ? FieldDescriptorProto_Label.REPEATED : f.required ? FieldDescriptorProto_Label.REQUIRED : FieldDescriptorProto_Label.OPTIONAL,
      ...typeOf(f, f.type, f.resolvedType),
    };
    if (f.partOf) out.oneofIndex = oneofs.indexOf(f.partOf);
    if (f.options?.proto3_optional === true) out.proto3Optional = true;
    if (f.options?.packed !== undefined) out.options = { packed: f.options.packed === true };
    if (f.options?.default !== undefined) out.defaultValue = String(f.options.default);
    return out;
  });
  return { name: t.name, field, nestedType, enumType, oneofDecl: oneofs.map((o) => ({ name: o.name })) };
}

function enumProto(e: protobuf.Enum) {
  return { name: e.name, value: Object.entries(e.values).map(([name, number]) => ({ name, number })) };
}

function serviceProto(s: protobuf.Service) {
  return {
    name: s.name,
    method: s.methodsArray.map((m) => {
      m.resolve();
      return {
        name: m.name,
        inputType: qualified(m.resolvedRequestType!),
        outputType: qualified(m.resolvedResponseType!),
        clientStreaming: m.requestStream === true,
        serverStreaming: m.responseStream === true,
      };
    }),
  };
}

/** Compiles one self-contained .proto text (imports limited to google/protobuf/*) into a registry. */
export function compileProtoText(text: string, fileName = "source.proto"): FileRegistry {
  const root = new protobuf.Root();
  let parsed: protobuf.IParserResult;
  try {
    parsed = protobuf.parse(text, root, { keepCase: true });
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `proto source does not parse: ${(e as Error).message}`);
  }
  const imports = [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])];
  for (const imp of imports) {
    const json = wellKnownFile(imp) ? protobuf.common.get(imp) : undefined;
    if (!json) {
      throw new RunnerError("FATAL_ERROR", `proto source imports ${imp}: only google/protobuf/*.proto imports are supported (inline the definitions)`);
    }
    root.addJSON(json.nested!);
  }
  try {
    root.resolveAll();
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `proto source: ${(e as Error).message}`);
  }
  const ns = parsed.package ? root.lookup(parsed.package) : root;
  if (!(ns instanceof protobuf.Namespace)) throw new RunnerError("FATAL_ERROR", `proto source: package ${parsed.package} not found`);
  const syntax = /^\s*syntax\s*=\s*["'](proto2|proto3)["']/m.exec(text)?.[1] ?? "proto2";
  const file = create(FileDescriptorProtoSchema, {
    name: fileName,
    package: parsed.package ?? "",
    syntax: syntax === "proto3" ? "proto3" : "",
    dependency: imports,
    // A plain namespace here is another package (e.g. google.protobuf from an import), not part of this file.
    messageType: ns.nestedArray.filter((n) => n instanceof protobuf.Type).map(messageProto),
    enumType: ns.nestedArray.filter((n) => n instanceof protobuf.Enum).map(enumProto),
    service: ns.nestedArray.filter((n) => n instanceof protobuf.Service).map(serviceProto),
  });
  try {
    return registryOf(file, () => undefined);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `proto source cannot be used: ${(e as Error).message}`);
  }
}
