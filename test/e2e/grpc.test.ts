// GRPC (and its deprecated alias GRPC_UNARY) through our gRPC API, calling a real grpc-js Greeter server (with
// reflection) started by this test. Settings, args and results use the proto texts the server serves.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectSettled, Status } from "../helpers/client.js";
import { expectAlive, uniqueName, useServer } from "../helpers/fixture.js";
import { closedPort, decodeHelloReply, encodeHelloRequest, startGreeter, type Greeter } from "../helpers/grpc_greeter.js";
import { servedCodec, type ServedCodec } from "../helpers/served_protos.js";

const GRPC_RUNNER_ID = 32770;
const GRPC_UNARY_RUNNER_ID = 3;
const SAY_HELLO = "/test.greeter.v1.Greeter/SayHello";
const SAY_HELLOS = "/test.greeter.v1.Greeter/SayHellos";

const fx = useServer();
let greeter: Greeter;
let grpcCodec: ServedCodec;
let unaryCodec: ServedCodec;

beforeAll(async () => {
  greeter = await startGreeter();
  grpcCodec = await servedCodec(fx.api, "GRPC");
  unaryCodec = await servedCodec(fx.api, "GRPC_UNARY");
});
afterAll(async () => {
  await greeter?.stop();
});

async function createWorker(settings: Record<string, unknown>, opts: { runnerId?: number; codec?: ServedCodec; response?: string } = {}) {
  const { response } = await fx.api.worker.Create({
    name: uniqueName("grpc"),
    runner_id: { value: opts.runnerId ?? GRPC_RUNNER_ID },
    runner_settings: (opts.codec ?? grpcCodec).encodeSettings({ host: "127.0.0.1", port: greeter.port, ...settings }),
    response_type: opts.response ?? "DIRECT",
    retry_policy: { type: "NONE" },
  });
  return response.id.value;
}

async function enqueue(workerId: string, args: Buffer, using?: string) {
  const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args, using, timeout: 20_000 }, { timeoutMs: 30_000 });
  return response.result!.data;
}

describe("GRPC", () => {
  it("unary, DIRECT: JSON request and JSON response through the target's reflection", async () => {
    expect(grpcCodec.runner.data.runner_settings_proto).toContain("message GrpcRunnerSettings");
    expect(Object.keys(grpcCodec.runner.data.method_proto_map!.schemas).sort()).toEqual(["streaming", "unary"]);
    const workerId = await createWorker({ use_reflection: true, as_json: true });
    const r = await enqueue(workerId, grpcCodec.encodeArgs({ method: SAY_HELLO, json_body: JSON.stringify({ name: "e2e", times: 3, tags: { k: "v" } }) }, "unary"), "unary");
    expect(r.status).toBe("SUCCESS");
    const out = grpcCodec.decodeResult(r.output!.items, "unary");
    expect(out.code).toBe(0);
    expect(JSON.parse(out.json_body)).toEqual({ message: "hello e2e [k=v]", index: 3 });
  });

  it("unary with a protobuf body and metadata; response headers and trailers come back in metadata", async () => {
    const workerId = await createWorker({ metadata: { "x-setting": "s" }, auth_token: "tok" });
    const args = grpcCodec.encodeArgs({ method: SAY_HELLO, body: encodeHelloRequest({ name: "bytes" }), metadata: { "x-token": "abc" } }, "unary");
    const r = await enqueue(workerId, args); // no `using`: GRPC runs `unary` by default
    expect(r.status).toBe("SUCCESS");
    const out = grpcCodec.decodeResult(r.output!.items, "unary");
    expect(decodeHelloReply(out.body).message).toBe("hello bytes");
    expect(out.metadata).toMatchObject({ "x-echo": "abc", "x-auth": "Bearer tok", "x-trailer": "bye" });
    expect(greeter.lastMetadata()).toMatchObject({ "x-setting": "s", "x-token": "abc" });
  });

  it("streaming via EnqueueForStream: one GrpcStreamingResult per message, then the status", async () => {
    const workerId = await createWorker({ use_reflection: true }, { response: "NO_RESULT" });
    const out = await collectSettled(
      fx.api.job.EnqueueForStream({
        worker_id: { value: workerId },
        using: "streaming",
        args: grpcCodec.encodeArgs({ method: SAY_HELLOS, json_body: '{"name":"st","times":3}', as_json: true }, "streaming"),
      }),
      20_000,
    );
    expect(out.error, `stream error: ${out.error?.details}`).toBeNull();
    const data = out.items.filter((i) => i.item === "data").map((i) => grpcCodec.decodeResult(i.data!, "streaming"));
    expect(data).toHaveLength(4);
    expect(data.slice(0, 3).map((c) => JSON.parse(c.json_body).message)).toEqual(["hello st #0", "hello st #1", "hello st #2"]);
    expect(data[3]).toMatchObject({ code: 0, metadata: { "x-count": "3" } });
    expect(out.items[out.items.length - 1].item).toBe("end");
  });

  it("streaming, DIRECT: one result with every message", async () => {
    const workerId = await createWorker({});
    const r = await enqueue(workerId, grpcCodec.encodeArgs({ method: SAY_HELLOS, body: encodeHelloRequest({ name: "d", times: 2 }) }, "streaming"), "streaming");
    expect(r.status).toBe("SUCCESS");
    const out = grpcCodec.decodeResult(r.output!.items, "streaming");
    expect(out.code).toBe(0);
    expect((out.bodies.items as Buffer[]).map((b) => decodeHelloReply(b).message)).toEqual(["hello d #0", "hello d #1"]);
  });

  it("a status the target answers with is a SUCCESS result carrying code and message", async () => {
    const workerId = await createWorker({ method: "/test.greeter.v1.Greeter/Fail" });
    const r = await enqueue(workerId, grpcCodec.encodeArgs({ body: Buffer.alloc(0) }, "unary"), "unary");
    expect(r.status).toBe("SUCCESS");
    expect(grpcCodec.decodeResult(r.output!.items, "unary")).toMatchObject({ code: Status.NOT_FOUND, message: "no such greeting" });
  });

  it("JSON through reflection of a server with protoc-built descriptors and imports (this jobworkerp server itself)", async () => {
    const [host, port] = fx.server.address.split(":");
    const workerId = await createWorker({ host, port: Number(port), use_reflection: true, as_json: true });
    const args = grpcCodec.encodeArgs({ method: "/jobworkerp.service.RunnerService/FindByName", json_body: '{"name":"GRPC"}' }, "unary");
    const r = await enqueue(workerId, args, "unary");
    expect(r.status, Buffer.from(r.output!.items).toString()).toBe("SUCCESS");
    const out = grpcCodec.decodeResult(r.output!.items, "unary");
    expect(out.code).toBe(0);
    expect(JSON.parse(out.json_body).data).toMatchObject({ id: { value: "32770" }, data: { name: "GRPC", runnerType: "GRPC" } });
  });

  it("failures: an unreachable target ends MAX_RETRY (ERROR_AND_RETRY, no retries) and bad args FATAL_ERROR, with clear messages", async () => {
    const down = await createWorker({ port: await closedPort() });
    const r = await enqueue(down, grpcCodec.encodeArgs({ method: SAY_HELLO, body: Buffer.alloc(0) }, "unary"), "unary");
    expect(r.status).toBe("MAX_RETRY");
    expect(Buffer.from(r.output!.items).toString()).toMatch(/cannot connect to 127\.0\.0\.1:\d+: UNAVAILABLE/);

    const workerId = await createWorker({ use_reflection: true });
    const bad = await enqueue(workerId, grpcCodec.encodeArgs({ method: "/test.greeter.v1.Greeter/Nope", json_body: "{}" }, "unary"), "unary");
    expect(bad.status).toBe("FATAL_ERROR");
    expect(Buffer.from(bad.output!.items).toString()).toMatch(/has no method Nope/);

    const noPort = await createWorker({ port: 0 });
    const r2 = await enqueue(noPort, grpcCodec.encodeArgs({ method: SAY_HELLO }, "unary"), "unary");
    expect(r2.status).toBe("FATAL_ERROR");
    expect(Buffer.from(r2.output!.items).toString()).toMatch(/port must be 1-65535/);
    await expectAlive(fx);
  });
});

describe("GRPC_UNARY (deprecated id 3)", () => {
  it("runs a unary call with its single method 'run'", async () => {
    expect(Object.keys(unaryCodec.runner.data.method_proto_map!.schemas)).toEqual(["run"]);
    const workerId = await createWorker({ use_reflection: true }, { runnerId: GRPC_UNARY_RUNNER_ID, codec: unaryCodec });
    const r = await enqueue(workerId, unaryCodec.encodeArgs({ method: SAY_HELLO, json_body: '{"name":"legacy"}', as_json: true }));
    expect(r.status).toBe("SUCCESS");
    expect(JSON.parse(unaryCodec.decodeResult(r.output!.items).json_body)).toEqual({ message: "hello legacy" });
  });
});
