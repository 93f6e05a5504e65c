// .proto source texts served to clients (runner_settings_proto / args_proto / result_proto).
import { readFileSync } from "node:fs";

// worker-container/src/runners/ → repo root proto/
const PROTO_DIR = new URL("../../../proto/", import.meta.url);
const cache = new Map<string, string>();

/** Source text of `proto/<relativePath>` (e.g. "jobworkerp/runner/command_args.proto"), read once. */
export function protoText(relativePath: string): string {
  let text = cache.get(relativePath);
  if (text === undefined) {
    text = readFileSync(new URL(relativePath.replace(/^\/+/, ""), PROTO_DIR), "utf8");
    cache.set(relativePath, text);
  }
  return text;
}
