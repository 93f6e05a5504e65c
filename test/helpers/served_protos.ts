// Encode settings/args and decode results with the proto texts a runner serves through RunnerService, as a
// jobworkerp client does (compiled here with protobufjs, independent of the server's generated code).
import protobuf from "protobufjs";
import type { Api, Runner } from "./client.js";
import { TO_OBJECT_OPTIONS } from "./protos.js";

type Obj = Record<string, unknown>;

/** The message `name` of a proto text, or else its first top-level message (the one it is about). */
function mainType(text: string, what: string, name?: string): protobuf.Type {
  const parsed = protobuf.parse(text, { keepCase: true });
  const root = parsed.root;
  root.resolveAll();
  const pkg = parsed.package ? root.lookup(parsed.package) : root;
  if (name) return (pkg as protobuf.Namespace).lookupType(name);
  const first = (pkg as protobuf.Namespace | null)?.nestedArray.find((n): n is protobuf.Type => n instanceof protobuf.Type);
  if (!first) throw new Error(`${what}: no message in the served proto text`);
  return first;
}

const encodeWith = (t: protobuf.Type, obj: Obj) => Buffer.from(t.encode(t.fromObject(obj)).finish());
const decodeWith = <T>(t: protobuf.Type, b: Uint8Array) => t.toObject(t.decode(b), TO_OBJECT_OPTIONS) as T;

export interface ServedCodec {
  runner: Runner;
  /** `type` picks a message by name when the text's first message is not the one meant. */
  encodeSettings(obj: Obj, type?: string): Buffer;
  encodeArgs(obj: Obj, using?: string, type?: string): Buffer;
  decodeResult<T = Record<string, any>>(bytes: Uint8Array, using?: string, type?: string): T;
}

/** Looks the runner up by name and compiles the proto texts it serves. */
export async function servedCodec(api: Api, runnerName: string): Promise<ServedCodec> {
  const { response } = await api.runner.FindByName({ name: runnerName });
  const runner = response.data;
  if (!runner) throw new Error(`runner ${runnerName} not found`);
  const schemas = runner.data.method_proto_map?.schemas ?? {};
  const method = (using?: string) => {
    const names = Object.keys(schemas);
    const name = using ?? (names.length === 1 ? names[0] : undefined);
    const m = name === undefined ? undefined : schemas[name];
    if (!m) throw new Error(`runner ${runnerName}: method ${using ?? "(default)"} not among ${names.join(", ")}`);
    return m;
  };
  return {
    runner,
    // a runner without settings serves "" and takes empty settings bytes
    encodeSettings: (obj, type) => (runner.data.runner_settings_proto.trim() === "" ? Buffer.alloc(0) : encodeWith(mainType(runner.data.runner_settings_proto, `${runnerName} settings`, type), obj)),
    encodeArgs: (obj, using, type) => encodeWith(mainType(method(using).args_proto, `${runnerName} args`, type), obj),
    decodeResult: (bytes, using, type) => decodeWith(mainType(method(using).result_proto, `${runnerName} result`, type), bytes),
  };
}
