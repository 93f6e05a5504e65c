// A registry from one file and its imports, added dependencies first. (protobuf-es's own resolver form,
// createFileRegistry(file, resolve), adds a shared import after a file that needs it when imports form a
// diamond, so the set is ordered here.)
import { create, createFileRegistry, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { wellKnownFile } from "./well_known.js";

/** `lookup` gives the files at hand; google/protobuf/* imports it lacks come from protobuf-es's bundled copies. */
export function registryOf(main: FileDescriptorProto, lookup: (name: string) => FileDescriptorProto | undefined): FileRegistry {
  const ordered: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const visit = (f: FileDescriptorProto) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    for (const dep of f.dependency) {
      const d = lookup(dep) ?? wellKnownFile(dep)?.proto;
      if (!d) throw new Error(`cannot find ${dep}, imported by ${f.name}`);
      visit(d);
    }
    ordered.push(f);
  };
  visit(main);
  return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
}
