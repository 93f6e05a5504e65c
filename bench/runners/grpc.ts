// GRPC unary calls to a local grpc-js Greeter (the e2e test's server): a protobuf body, and a JSON body with a
// JSON answer through the target's reflection (descriptors are cached per runner instance, so use_static pays
// the reflection round trip once).
import { encodeHelloRequest, startGreeter } from "../../test/helpers/grpc_greeter.js";
import type { RunnerBenchCase } from "./case.js";

const SAY_HELLO = "/test.greeter.v1.Greeter/SayHello";

export const cases: RunnerBenchCase[] = [
  {
    name: "GRPC unary, protobuf body (local greeter)",
    runner: "GRPC",
    using: "unary",
    async prepare() {
      const greeter = await startGreeter({ reflection: false });
      return {
        settings: { host: "127.0.0.1", port: greeter.port },
        args: { method: SAY_HELLO, body: Buffer.from(encodeHelloRequest({ name: "bench" })).toString("base64") },
        cleanup: () => greeter.stop(),
      };
    },
  },
  {
    name: "GRPC unary, JSON via reflection (local greeter)",
    runner: "GRPC",
    using: "unary",
    async prepare() {
      const greeter = await startGreeter();
      return {
        settings: { host: "127.0.0.1", port: greeter.port, use_reflection: true, as_json: true },
        args: { method: SAY_HELLO, json_body: '{"name":"bench"}' },
        cleanup: () => greeter.stop(),
      };
    },
  },
];
