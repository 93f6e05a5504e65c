// protobuf-es's bundled google/protobuf/*.proto descriptors, by file name ("google/protobuf/timestamp.proto"),
// to resolve imports that a proto source or a reflection answer leaves out.
import type { DescFile } from "@bufbuild/protobuf";
import * as wkt from "@bufbuild/protobuf/wkt";

const files = new Map<string, DescFile>();
for (const v of Object.values(wkt)) {
  const f = v as Partial<DescFile> | undefined;
  if (f && typeof f === "object" && f.kind === "file" && f.proto) files.set(f.proto.name, f as DescFile);
}

export function wellKnownFile(name: string): DescFile | undefined {
  return files.get(name);
}

export function wellKnownFiles(): Iterable<DescFile> {
  return files.values();
}
