// Compiles a plugin's .proto source text into a protobuf-es message schema, so the front validates settings
// and args of plugin runners exactly as it does for built-in runners (whose schemas are generated at build time).
//
// protobufjs parses the text (it is the only .proto parser at hand in JS); its descriptor export leaves type
// references relative ("Inner", map entry "M"), which protobuf-es's registry rejects, so they are qualified here.
import { createFileRegistry, fromBinary, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor/index.js";

interface FieldDesc {
  name: string;
  typeName?: string;
}
interface MessageDesc {
  name: string;
  field: FieldDesc[];
  nestedType: MessageDesc[];
  options?: { mapEntry?: boolean };
}

/** Rewrites relative type references of `msg` (and its nested messages) to fully qualified names. */
function qualify(msg: MessageDesc, type: protobuf.Type): void {
  for (const f of msg.field ?? []) {
    const pf = type.fields[f.name];
    if (!pf || !f.typeName) continue;
    if (pf.map) {
      // the map entry is nested in this message; its value field may refer to a message or enum
      const entry = msg.nestedType?.find((n) => n.name === f.typeName);
      const value = entry?.field.find((v) => v.name === "value");
      if (value?.typeName && pf.resolvedType) value.typeName = pf.resolvedType.fullName;
      f.typeName = `${type.fullName}.${f.typeName}`;
    } else if (pf.resolvedType) f.typeName = pf.resolvedType.fullName;
  }
  for (const n of msg.nestedType ?? []) {
    if (n.options?.mapEntry) continue;
    const nested = type.nested?.[n.name];
    if (nested instanceof protobuf.Type) qualify(n, nested);
  }
}

export interface CompiledProto {
  /** The first top-level message of the text: the one a runner proto is about (as clients pick it). */
  main: DescMessage;
  byName(name: string): DescMessage | undefined;
}

/** Parses self-contained .proto text (no imports). Throws an Error naming `what` when it does not compile. */
export function compileProto(text: string, what: string): CompiledProto {
  try {
    const parsed = protobuf.parse(text, { keepCase: true });
    if (parsed.imports?.length || parsed.weakImports?.length) throw new Error("imports are not supported (the text is served verbatim)");
    const root = parsed.root;
    root.resolveAll();
    const pkg = parsed.package ?? "";
    const set = (root as unknown as { toDescriptor(syntax: string): { file: Array<{ messageType: MessageDesc[] }> } }).toDescriptor("proto3");
    for (const file of set.file) {
      for (const m of file.messageType ?? []) qualify(m, root.lookupType(pkg ? `${pkg}.${m.name}` : m.name));
    }
    const bytes = (descriptor as unknown as { FileDescriptorSet: { encode(m: unknown): { finish(): Uint8Array } } }).FileDescriptorSet.encode(set).finish();
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
    const ns = pkg ? root.lookup(pkg) : root;
    const first = (ns as protobuf.Namespace | null)?.nestedArray.find((n): n is protobuf.Type => n instanceof protobuf.Type);
    if (!first) throw new Error("no message in the text");
    const main = registry.getMessage(first.fullName.replace(/^\./, ""));
    if (!main) throw new Error(`message ${first.fullName} missing from the compiled descriptor`);
    return {
      main,
      byName: (name) => registry.getMessage(pkg && !name.includes(".") ? `${pkg}.${name}` : name),
    };
  } catch (e) {
    throw new Error(`${what}: invalid proto text: ${(e as Error).message}`);
  }
}
