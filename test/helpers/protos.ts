// Proto loading for the e2e client, independent of the server's code (no imports from worker-container/).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The contract, usable as an include dir. */
export const PROTO_DIR = path.join(REPO_ROOT, "proto");

function listProtos(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.isDirectory()) out.push(...listProtos(dir, r));
    else if (ent.name.endsWith(".proto")) out.push(r);
  }
  return out.sort();
}

/** All .proto files, relative to PROTO_DIR (e.g. "jobworkerp/service/job.proto"). */
export const PROTO_FILES = listProtos(PROTO_DIR);
export const SERVICE_PROTO_FILES = PROTO_FILES.filter((f) => f.startsWith("jobworkerp/service/"));
export const RUNNER_PROTO_FILES = PROTO_FILES.filter((f) => f.startsWith("jobworkerp/runner/"));

/** Options for proto-loader and for protobufjs toObject; used everywhere so decoded shapes agree. */
export const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

export const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  // bytes: left unset -> Buffer (protobufjs' default in Node), as with proto-loader
  defaults: true,
  oneofs: true,
};

let root: protobuf.Root | undefined;
/** A protobufjs Root with every proto under proto/ (data, service, runner). */
export function protoRoot(): protobuf.Root {
  if (!root) {
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
    r.loadSync(PROTO_FILES, { keepCase: true });
    r.resolveAll();
    root = r;
  }
  return root;
}

export function lookupType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(fullName.replace(/^\./, ""));
}

/**
 * Encodes a plain object as `fullName`. Enum fields may be names or numbers; numbers outside the enum
 * are kept as-is (used to send deliberately invalid enum values).
 */
export function encodeMessage(fullName: string, obj: Record<string, unknown>): Buffer {
  const t = lookupType(fullName);
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

export function decodeMessage<T = Record<string, any>>(fullName: string, bytes: Uint8Array): T {
  const t = lookupType(fullName);
  return t.toObject(t.decode(bytes), TO_OBJECT_OPTIONS) as T;
}
