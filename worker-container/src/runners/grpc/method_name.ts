// "/package.Service/Method" or "package.Service/Method" → its parts and the HTTP/2 path grpc-js calls.
import { RunnerError } from "../runner.js";

export interface MethodName {
  /** Fully qualified service name, e.g. "helloworld.Greeter". */
  service: string;
  method: string;
  /** "/helloworld.Greeter/SayHello" */
  path: string;
}

const PART = /^[A-Za-z_][A-Za-z0-9_.]*$/;

export function parseMethodName(raw: string): MethodName {
  const parts = raw.trim().replace(/^\//, "").split("/");
  if (parts.length !== 2 || !PART.test(parts[0]) || !PART.test(parts[1]) || parts[1].includes(".")) {
    throw new RunnerError("FATAL_ERROR", `invalid gRPC method ${JSON.stringify(raw)}: expected "/package.Service/Method" or "package.Service/Method"`);
  }
  const [service, method] = parts;
  return { service, method, path: `/${service}/${method}` };
}
