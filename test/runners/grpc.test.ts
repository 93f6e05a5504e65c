// GRPC runner against a real grpc-js Greeter server (with @grpc/reflection) started by the test.
import { create, fromBinary, fromJson, toBinary, toJson, type MessageInitShape } from "@bufbuild/protobuf";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrpcArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/grpc/args_pb.js";
import { GrpcRunnerSettingsSchema } from "../../worker-container/src/gen/jobworkerp/runner/grpc/runner_pb.js";
import { GrpcStreamingResultSchema, type GrpcStreamingResult } from "../../worker-container/src/gen/jobworkerp/runner/grpc/streaming_result_pb.js";
import { GrpcUnaryResultSchema, type GrpcUnaryResult } from "../../worker-container/src/gen/jobworkerp/runner/grpc/unary_result_pb.js";
import { grpcRunner, grpcUnaryRunner } from "../../worker-container/src/runners/grpc/index.js";
import { compileProtoText } from "../../worker-container/src/runners/grpc/proto_compiler.js";
import type { RunContext, RunnerInstance } from "../../worker-container/src/runners/runner.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closedPort, decodeHelloReply, encodeHelloRequest, GREETER_PROTO, makeTestPki, startGreeter, type Greeter } from "../helpers/grpc_greeter.js";
import { expectRunnerError, rejection } from "../helpers/runner_errors.js";

let greeter: Greeter;
let protoServer: http.Server;
let protoUrl = "";
const open: RunnerInstance[] = [];

beforeAll(async () => {
  greeter = await startGreeter();
  // Serves the Greeter .proto text for the URL proto source (checks the fetch header).
  protoServer = http.createServer((req, res) => {
    if (req.headers["x-proto-key"] !== "k1") {
      res.writeHead(403);
      res.end("forbidden");
      return;
    }
    res.end(GREETER_PROTO);
  });
  await new Promise<void>((r) => protoServer.listen(0, "127.0.0.1", r));
  protoUrl = `http://127.0.0.1:${(protoServer.address() as AddressInfo).port}/greeter.proto`;
});

afterAll(async () => {
  await Promise.all(open.map((i) => i.close?.()));
  await greeter?.stop();
  protoServer?.closeAllConnections();
  await new Promise((r) => protoServer?.close(r));
});

type SettingsInit = MessageInitShape<typeof GrpcRunnerSettingsSchema>;
type ArgsInit = MessageInitShape<typeof GrpcArgsSchema>;

async function instance(s: Partial<SettingsInit> = {}, def = grpcRunner): Promise<RunnerInstance> {
  const init = { host: "127.0.0.1", port: greeter.port, ...s } as SettingsInit;
  const i = await def.create(toBinary(GrpcRunnerSettingsSchema, create(GrpcRunnerSettingsSchema, init)));
  open.push(i);
  return i;
}

const args = (a: ArgsInit) => toBinary(GrpcArgsSchema, create(GrpcArgsSchema, a));
const ctx = (using = "unary", signal: AbortSignal = new AbortController().signal): RunContext => ({ signal, using, jobId: 1n, metadata: {} });
const unary = async (i: RunnerInstance, a: ArgsInit, c = ctx()): Promise<GrpcUnaryResult> => fromBinary(GrpcUnaryResultSchema, await i.run(args(a), c));

async function chunks(i: RunnerInstance, a: ArgsInit): Promise<GrpcStreamingResult[]> {
  const out: GrpcStreamingResult[] = [];
  for await (const c of i.runStream!(args(a), ctx("streaming"))) out.push(fromBinary(GrpcStreamingResultSchema, c));
  return out;
}

const SAY_HELLO = "/test.greeter.v1.Greeter/SayHello";
const SAY_HELLOS = "test.greeter.v1.Greeter/SayHellos";

describe("GRPC runner: unary", () => {
  it("sends a protobuf body and returns code 0 with the reply bytes", async () => {
    const r = await unary(await instance(), { method: SAY_HELLO, request: { case: "body", value: encodeHelloRequest({ name: "bytes" }) } });
    expect(r.code).toBe(0);
    expect(r.message).toBeUndefined();
    expect(r.responseData.case).toBe("body");
    expect(decodeHelloReply(r.responseData.value as Uint8Array).message).toBe("hello bytes");
  });

  it("takes the method from the settings when the job gives none (without the leading slash too)", async () => {
    const i = await instance({ method: "test.greeter.v1.Greeter/SayHello" });
    const r = await unary(i, { request: { case: "body", value: encodeHelloRequest({ name: "default" }) } });
    expect(decodeHelloReply(r.responseData.value as Uint8Array).message).toBe("hello default");
  });

  it("JSON request and JSON response through server reflection (proto3 optional and map fields)", async () => {
    const i = await instance({ useReflection: true });
    const r = await unary(i, { method: SAY_HELLO, request: { case: "jsonBody", value: JSON.stringify({ name: "json", times: 7, tags: { a: "1" } }) }, asJson: true });
    expect(r.code).toBe(0);
    expect(r.responseData.case).toBe("jsonBody");
    expect(JSON.parse(r.responseData.value as string)).toEqual({ message: "hello json [a=1]", index: 7 });
    // the second call reuses the cached descriptors; as_json from the settings this time
    const j = await instance({ useReflection: true, asJson: true });
    const r2 = await unary(j, { method: SAY_HELLO, request: { case: "jsonBody", value: '{"name":"again"}' } });
    expect(JSON.parse(r2.responseData.value as string)).toEqual({ message: "hello again" });
    const r3 = await unary(j, { method: SAY_HELLO, request: { case: "jsonBody", value: '{"name":"third"}' } });
    expect(JSON.parse(r3.responseData.value as string).message).toBe("hello third");
  });

  it("JSON through an inline .proto source, without reflection", async () => {
    const i = await instance({ proto: { source: GREETER_PROTO } });
    const r = await unary(i, { method: SAY_HELLO, request: { case: "jsonBody", value: '{"name":"inline","times":2}' }, asJson: true });
    expect(JSON.parse(r.responseData.value as string)).toEqual({ message: "hello inline", index: 2 });
  });

  it("a proto source may import google/protobuf well-known types (nested types, enums, maps, oneofs)", () => {
    const reg = compileProtoText(`syntax = "proto3";
package wk.v1;
import "google/protobuf/timestamp.proto";
import "google/protobuf/struct.proto";
enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; }
message Req {
  message Inner { repeated int64 ids = 1; Kind kind = 2; }
  google.protobuf.Timestamp at = 1;
  google.protobuf.Struct extra = 2;
  Inner inner = 3;
  map<string, Inner> by_name = 4;
  oneof choice { string text = 5; bytes raw = 6; }
  optional uint32 limit = 7;
}
service S { rpc Call(Req) returns (Req); }
`);
    const m = reg.getService("wk.v1.S")!.methods[0];
    const json = { at: "2026-01-02T03:04:05Z", extra: { a: [1, "x"] }, inner: { ids: ["1", "2"], kind: "KIND_A" }, byName: { k: { ids: ["3"] } }, text: "t", limit: 0 };
    const bytes = toBinary(m.input, fromJson(m.input, json, { registry: reg }));
    expect(toJson(m.output, fromBinary(m.output, bytes), { registry: reg })).toEqual(json);
    expect(() => compileProtoText('syntax = "proto3"; import "other/dep.proto"; message A {}')).toThrow(/only google\/protobuf\/\*\.proto imports are supported/);
  });

  it("JSON through a .proto source fetched from a URL with fetch_headers (plain http only when allowed)", async () => {
    const i = await instance();
    const proto = { source: protoUrl, fetchHeaders: { "x-proto-key": "k1" }, allowInsecureHttp: true };
    const r = await unary(i, { method: SAY_HELLO, request: { case: "jsonBody", value: '{"name":"url"}' }, asJson: true, proto });
    expect(JSON.parse(r.responseData.value as string)).toEqual({ message: "hello url" });
    await expectRunnerError(
      unary(i, { method: SAY_HELLO, request: { case: "jsonBody", value: "{}" }, proto: { source: protoUrl, fetchHeaders: {} } }),
      "FATAL_ERROR",
      /allow_insecure_http/,
    );
    await expectRunnerError(
      unary(i, { method: SAY_HELLO, request: { case: "jsonBody", value: "{}" }, proto: { ...proto, fetchHeaders: {} } }),
      "FATAL_ERROR",
      /HTTP 403/,
    );
  });

  it("sends settings + job metadata and the bearer token; returns response headers and trailers", async () => {
    const i = await instance({ metadata: { "x-token": "from-settings", "x-setting": "s" }, authToken: "secret" });
    const r = await unary(i, { method: SAY_HELLO, request: { case: "body", value: encodeHelloRequest({ name: "md" }) }, metadata: { "x-token": "from-job" } });
    expect(greeter.lastMetadata()).toMatchObject({ "x-token": "from-job", "x-setting": "s", authorization: "Bearer secret" });
    expect(r.metadata["x-echo"]).toBe("from-job");
    expect(r.metadata["x-auth"]).toBe("Bearer secret");
    expect(r.metadata["x-trailer"]).toBe("bye");
  });

  it("a status the server answers with is the result: code and message (NOT_FOUND, and UNIMPLEMENTED for an unknown method)", async () => {
    const i = await instance();
    const r = await unary(i, { method: "/test.greeter.v1.Greeter/Fail", request: { case: "body", value: new Uint8Array() } });
    expect(r.code).toBe(5);
    expect(r.message).toBe("no such greeting");
    const u = await unary(i, { method: "/test.greeter.v1.Greeter/Nope", request: { case: "body", value: new Uint8Array() } });
    expect(u.code).toBe(12);
    expect(u.message).toMatch(/Nope|unimplemented/i);
  });

  it("an unknown method with a JSON body fails FATAL_ERROR naming the service's methods", async () => {
    const i = await instance({ useReflection: true });
    await expectRunnerError(
      unary(i, { method: "/test.greeter.v1.Greeter/Nope", request: { case: "jsonBody", value: "{}" } }),
      "FATAL_ERROR",
      /reflection: service test\.greeter\.v1\.Greeter has no method Nope \(methods: SayHello, SayHellos, Slow, Fail\)/,
    );
    await expectRunnerError(
      unary(i, { method: "/test.nothing.Here/Nope", request: { case: "jsonBody", value: "{}" } }),
      "FATAL_ERROR",
      /reflection: service test\.nothing\.Here: NOT_FOUND/,
    );
  });

  it("timeout: the job's timeout ends a slow call with ERROR_AND_RETRY naming DEADLINE_EXCEEDED (args over settings)", async () => {
    const i = await instance({ timeout: 60_000 });
    const t0 = Date.now();
    await expectRunnerError(
      unary(i, { method: "/test.greeter.v1.Greeter/Slow", request: { case: "body", value: new Uint8Array() }, timeout: 200 }),
      "ERROR_AND_RETRY",
      /Slow timed out after 200 ms \(DEADLINE_EXCEEDED/,
    );
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it("the job's abort signal cancels the call and the run rejects with its reason", async () => {
    const i = await instance();
    const ac = new AbortController();
    const p = unary(i, { method: "/test.greeter.v1.Greeter/Slow", request: { case: "body", value: new Uint8Array() } }, ctx("unary", ac.signal));
    setTimeout(() => ac.abort(new Error("job cancelled")), 100);
    const e = await rejection(p);
    expect((e as Error).message).toBe("job cancelled");
  });

  it("an unreachable host fails ERROR_AND_RETRY with UNAVAILABLE and the connection error", async () => {
    const i = await instance({ port: await closedPort() });
    await expectRunnerError(
      unary(i, { method: SAY_HELLO, request: { case: "body", value: new Uint8Array() } }),
      "ERROR_AND_RETRY",
      /cannot connect to 127\.0\.0\.1:\d+: UNAVAILABLE: .*ECONNREFUSED/,
    );
    const j = await instance({ port: await closedPort(), connectionTimeout: 500 });
    await expectRunnerError(unary(j, { method: SAY_HELLO }), "ERROR_AND_RETRY", /cannot connect to 127\.0\.0\.1:\d+/);
  });

  it("bad settings and args fail FATAL_ERROR with a clear message", async () => {
    await expectRunnerError(grpcRunner.create(toBinary(GrpcRunnerSettingsSchema, create(GrpcRunnerSettingsSchema, { host: "127.0.0.1" }))), "FATAL_ERROR", /port must be 1-65535/);
    await expectRunnerError(grpcRunner.create(toBinary(GrpcRunnerSettingsSchema, create(GrpcRunnerSettingsSchema, { port: 1 }))), "FATAL_ERROR", /host/);
    await expectRunnerError(
      grpcRunner.create(toBinary(GrpcRunnerSettingsSchema, create(GrpcRunnerSettingsSchema, { host: "h", port: 1, tls: true, tlsConfig: { caCertPath: "/nonexistent/ca.pem" } }))),
      "FATAL_ERROR",
      /ca_cert_path \/nonexistent\/ca\.pem: ENOENT/,
    );
    const i = await instance();
    await expectRunnerError(i.run(new Uint8Array([0xff, 0xff]), ctx()), "FATAL_ERROR", /invalid GrpcArgs/);
    await expectRunnerError(unary(i, {}), "FATAL_ERROR", /no gRPC method/);
    await expectRunnerError(unary(i, { method: "SayHello" }), "FATAL_ERROR", /invalid gRPC method "SayHello"/);
    await expectRunnerError(unary(i, { method: SAY_HELLO, request: { case: "jsonBody", value: "{}" } }), "FATAL_ERROR", /json_body needs the method's schema/);
    await expectRunnerError(
      unary(i, { method: SAY_HELLO, request: { case: "jsonBody", value: '{"nom":"x"}' }, proto: { source: GREETER_PROTO } }),
      "FATAL_ERROR",
      /json_body does not match test\.greeter\.v1\.HelloRequest/,
    );
    await expectRunnerError(unary(i, { method: SAY_HELLO, request: { case: "jsonBody", value: "{" }, proto: { source: GREETER_PROTO } }), "FATAL_ERROR", /not JSON/);
    await expectRunnerError(unary(i, { method: SAY_HELLO, request: { case: "jsonBody", value: "{}" }, proto: { source: "message {" } }), "FATAL_ERROR", /proto source does not parse/);
    await expectRunnerError(
      unary(i, { method: "/" + SAY_HELLOS, request: { case: "jsonBody", value: "{}" }, proto: { source: GREETER_PROTO } }),
      "FATAL_ERROR",
      /server-streaming method/,
    );
  });

  it("GRPC_UNARY (deprecated id 3) runs the unary call under method 'run'", async () => {
    const i = await instance({}, grpcUnaryRunner);
    const r = await unary(i, { method: SAY_HELLO, request: { case: "body", value: encodeHelloRequest({ name: "legacy" }) } }, ctx("run"));
    expect(decodeHelloReply(r.responseData.value as Uint8Array).message).toBe("hello legacy");
  });
});

describe("GRPC runner: streaming", () => {
  it("streamed: one chunk per response message, then the status with trailers", async () => {
    const out = await chunks(await instance(), { method: SAY_HELLOS, request: { case: "body", value: encodeHelloRequest({ name: "s", times: 3 }) } });
    expect(out).toHaveLength(4);
    expect(out.slice(0, 3).map((c) => decodeHelloReply((c.responseData.value as { items: Uint8Array[] }).items[0]).message)).toEqual(["hello s #0", "hello s #1", "hello s #2"]);
    expect(out[3]).toMatchObject({ code: 0, responseData: { case: undefined } });
    expect(out[3].metadata["x-count"]).toBe("3");
  });

  it("streamed as JSON through reflection", async () => {
    const out = await chunks(await instance({ useReflection: true }), { method: SAY_HELLOS, request: { case: "jsonBody", value: '{"name":"j","times":2}' }, asJson: true });
    expect(out.slice(0, 2).map((c) => JSON.parse(c.responseData.value as string))).toEqual([{ message: "hello j #0" }, { message: "hello j #1", index: 1 }]);
  });

  it("not streamed: one result with every message (bodies, or a JSON array with as_json)", async () => {
    const i = await instance({ useReflection: true });
    const r = fromBinary(GrpcStreamingResultSchema, await i.run(args({ method: SAY_HELLOS, request: { case: "body", value: encodeHelloRequest({ name: "c", times: 2 }) } }), ctx("streaming")));
    expect(r.code).toBe(0);
    expect((r.responseData.value as { items: Uint8Array[] }).items.map((b) => decodeHelloReply(b).index)).toEqual([0, 1]);
    const j = fromBinary(GrpcStreamingResultSchema, await i.run(args({ method: SAY_HELLOS, request: { case: "jsonBody", value: '{"name":"c","times":2}' }, asJson: true }), ctx("streaming")));
    expect(JSON.parse(j.responseData.value as string)).toEqual([{ message: "hello c #0" }, { message: "hello c #1", index: 1 }]);
  });

  it("a stream that ends with an error status reports the messages before it, then code and message", async () => {
    const out = await chunks(await instance(), { method: SAY_HELLOS, request: { case: "body", value: encodeHelloRequest({ name: "boom", times: 5 }) } });
    expect(out).toHaveLength(3);
    expect(out[2]).toMatchObject({ code: 10, message: "boom after 2" });
  });

  it("runStream of the unary method is refused", async () => {
    const i = await instance();
    const it = i.runStream!(args({ method: SAY_HELLO }), ctx("unary"))[Symbol.asyncIterator]();
    await expectRunnerError(it.next(), "FATAL_ERROR", /does not stream/);
  });
});

describe("GRPC runner: TLS", () => {
  it("private CA + server_name_override, and mutual TLS with a client certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "grpc-tls-"));
    const pki = makeTestPki(dir, "greeter.test");
    const tlsGreeter = await startGreeter({
      reflection: true,
      tls: { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), clientCa: readFileSync(pki.ca) },
    });
    try {
      const tlsConfig = { caCertPath: pki.ca, clientCertPath: pki.clientCert, clientKeyPath: pki.clientKey, serverNameOverride: "greeter.test" };
      const i = await instance({ port: tlsGreeter.port, tls: true, tlsConfig, useReflection: true, asJson: true });
      const r = await unary(i, { method: SAY_HELLO, request: { case: "jsonBody", value: '{"name":"tls"}' } });
      expect(JSON.parse(r.responseData.value as string)).toEqual({ message: "hello tls" });
      // without the client certificate the handshake is refused: no answer from the server, so the job fails
      const anon = await instance({ port: tlsGreeter.port, tls: true, tlsConfig: { caCertPath: pki.ca, serverNameOverride: "greeter.test" } });
      await expectRunnerError(unary(anon, { method: SAY_HELLO, request: { case: "body", value: new Uint8Array() } }), "ERROR_AND_RETRY", /UNAVAILABLE/);
    } finally {
      await tlsGreeter.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
