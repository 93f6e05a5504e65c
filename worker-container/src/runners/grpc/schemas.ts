// Request/response schemas of the called method, for json_body and as_json: from a proto source (inline .proto
// text or a URL) or from the server's reflection service. Registries are cached per runner instance, so a
// use_static worker resolves each service or source once.
import { fromBinary, fromJson, toBinary, toJsonString, type DescMethod, type FileRegistry, type JsonValue } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { RunnerError } from "../runner.js";
import type { MethodName } from "./method_name.js";
import { compileProtoText } from "./proto_compiler.js";
import { reflectService, type ReflectionCallOptions } from "./reflection.js";

/** GrpcSettingsProtoSource / GrpcArgsProtoSource (same shape). */
export interface ProtoSource {
  source: string;
  fetchHeaders: { [key: string]: string };
  allowInsecureHttp?: boolean;
}

const FETCH_TIMEOUT_MS = 30_000;

async function fetchProtoText(src: ProtoSource, signal: AbortSignal): Promise<string> {
  const url = new URL(src.source.trim());
  if (url.protocol === "http:" && !src.allowInsecureHttp) {
    throw new RunnerError("FATAL_ERROR", `proto source ${url.origin}: plain http needs allow_insecure_http`);
  }
  let res: Response;
  try {
    res = await fetch(url, { headers: src.fetchHeaders, signal: AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]) });
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new RunnerError("ERROR_AND_RETRY", `cannot fetch proto source ${url.href}: ${cause}`);
  }
  const text = await res.text();
  if (!res.ok) {
    throw new RunnerError(res.status >= 500 ? "ERROR_AND_RETRY" : "FATAL_ERROR", `fetching proto source ${url.href}: HTTP ${res.status}`);
  }
  return text;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s.trim());

export class SchemaCache {
  private readonly bySource = new Map<string, Promise<FileRegistry>>();
  private readonly byService = new Map<string, Promise<FileRegistry>>();

  /** A registry holding `name.service`: from `source` when given, else through reflection on `opts.client` if set. */
  async registry(
    name: MethodName,
    source: ProtoSource | undefined,
    opts: ReflectionCallOptions & { client?: grpc.Client },
  ): Promise<FileRegistry | undefined> {
    if (source?.source.trim()) {
      const key = JSON.stringify([source.source, source.fetchHeaders, source.allowInsecureHttp]);
      return this.cached(this.bySource, key, async () => {
        const text = isUrl(source.source) ? await fetchProtoText(source, opts.signal) : source.source;
        return compileProtoText(text);
      });
    }
    const client = opts.client;
    if (client) return this.cached(this.byService, name.service, () => reflectService(client, name.service, opts));
    return undefined;
  }

  /** Failed lookups are not cached: the next job asks again (the server may have been down or redeployed). */
  private cached(map: Map<string, Promise<FileRegistry>>, key: string, load: () => Promise<FileRegistry>): Promise<FileRegistry> {
    let p = map.get(key);
    if (!p) {
      p = load();
      map.set(key, p);
      p.catch(() => map.delete(key));
    }
    return p;
  }
}

/** The method's descriptor in `registry`, or a FATAL_ERROR naming what is missing. */
export function findMethod(registry: FileRegistry, name: MethodName, origin: string): DescMethod {
  const service = registry.getService(name.service);
  if (!service) throw new RunnerError("FATAL_ERROR", `${origin}: service ${name.service} not found`);
  const method = service.methods.find((m) => m.name === name.method);
  if (!method) {
    throw new RunnerError("FATAL_ERROR", `${origin}: service ${name.service} has no method ${name.method} (methods: ${service.methods.map((m) => m.name).join(", ")})`);
  }
  return method;
}

export function jsonToRequest(method: DescMethod, registry: FileRegistry, json: string): Uint8Array {
  let value: JsonValue;
  try {
    value = JSON.parse(json) as JsonValue;
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `json_body is not JSON: ${(e as Error).message}`);
  }
  try {
    return toBinary(method.input, fromJson(method.input, value, { registry }));
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `json_body does not match ${method.input.typeName}: ${(e as Error).message}`);
  }
}

export function responseToJson(method: DescMethod, registry: FileRegistry, bytes: Uint8Array): string {
  try {
    return toJsonString(method.output, fromBinary(method.output, bytes), { registry });
  } catch (e) {
    throw new RunnerError("OTHER_ERROR", `response is not a valid ${method.output.typeName}: ${(e as Error).message}`);
  }
}
