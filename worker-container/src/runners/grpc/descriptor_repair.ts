// Makes descriptors from reflection servers usable by protobuf-es. grpc-js servers (@grpc/reflection) synthesize
// their FileDescriptorProtos with protobufjs, which writes type references relative to their scope ("Tags",
// "Kind"), drops imports, leaves json_name empty and loses proto3 `optional` markers. protoc-built servers send correct descriptors,
// which this leaves unchanged.
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import type { DescriptorProto, FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { wellKnownFiles } from "./well_known.js";

type Visit = (m: DescriptorProto, scope: string) => void;

function eachMessage(messages: DescriptorProto[], scope: string, visit: Visit) {
  for (const m of messages) {
    const name = scope ? `${scope}.${m.name}` : m.name;
    visit(m, name);
    eachMessage(m.nestedType, name, visit);
  }
}

/** Fully qualified type name (no leading dot) → file that defines it. */
function typeIndex(files: Iterable<FileDescriptorProto>): Map<string, string> {
  const index = new Map<string, string>();
  for (const f of files) {
    const add = (n: string) => index.set(n, f.name);
    f.enumType.forEach((e) => add(f.package ? `${f.package}.${e.name}` : e.name));
    eachMessage(f.messageType, f.package, (m, name) => {
      add(name);
      m.enumType.forEach((e) => add(`${name}.${e.name}`));
    });
  }
  return index;
}

/** Resolves `ref` as protoc does: from the innermost enclosing scope outwards. */
function resolve(ref: string, scope: string, index: Map<string, string>): string | undefined {
  if (ref.startsWith(".")) return index.has(ref.slice(1)) ? ref.slice(1) : undefined;
  const parts = scope ? scope.split(".") : [];
  for (let i = parts.length; i >= 0; i--) {
    const candidate = [...parts.slice(0, i), ref].join(".");
    if (index.has(candidate)) return candidate;
  }
  return undefined;
}

/** Repairs `files` in place (see the module comment). */
export function repairDescriptors(files: FileDescriptorProto[]): void {
  const index = typeIndex([...files, ...[...wellKnownFiles()].map((f) => f.proto)]);
  for (const f of files) {
    const deps = new Set(f.dependency);
    const fix = (ref: string, scope: string): string => {
      const full = resolve(ref, scope, index);
      if (full === undefined) return ref; // let protobuf-es report it
      const file = index.get(full)!;
      if (file !== f.name && !deps.has(file)) {
        deps.add(file);
        f.dependency.push(file);
      }
      return `.${full}`;
    };
    eachMessage(f.messageType, f.package, (m, name) => {
      for (const field of m.field) {
        if (!field.jsonName) field.jsonName = protoCamelCase(field.name);
        if (field.typeName) field.typeName = fix(field.typeName, name);
        // A one-field oneof named "_<field>" in proto3 is what `optional` compiles to.
        const oneof = field.oneofIndex !== undefined ? m.oneofDecl[field.oneofIndex] : undefined;
        if (
          f.syntax === "proto3" &&
          oneof?.name === `_${field.name}` &&
          m.field.filter((x) => x.oneofIndex === field.oneofIndex).length === 1
        ) {
          field.proto3Optional = true;
        }
      }
    });
    for (const s of f.service) {
      for (const m of s.method) {
        m.inputType = fix(m.inputType, f.package);
        m.outputType = fix(m.outputType, f.package);
      }
    }
  }
}
