// HTTP_REQUEST runner against a real node:http server.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { HttpRequestArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/http_request_args_pb.js";
import { HttpRequestRunnerSettingsSchema } from "../../worker-container/src/gen/jobworkerp/runner/http_request_settings_pb.js";
import {
  HttpResponseResultSchema,
  type HttpResponseResult,
} from "../../worker-container/src/gen/jobworkerp/runner/http_response_result_pb.js";
import { collectHttpStream, httpRequestRunner } from "../../worker-container/src/runners/http_request/index.js";
import type { RunContext, RunnerInstance } from "../../worker-container/src/runners/runner.js";
import { expectRunnerError, rejection } from "../helpers/runner_errors.js";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
  remotePort: number;
}

let server: Server;
let port: number;
const seen: Seen[] = [];
const hanging = new Set<() => void>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(parts).toString(),
        remotePort: req.socket.remotePort!,
      });
      const path = req.url!.split("?")[0];
      if (path === "/api/echo") {
        res.setHeader("x-custom", "yes");
        res.setHeader("set-cookie", ["a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT", "b=2"]);
        res.end("echoed:" + Buffer.concat(parts).toString());
      } else if (path === "/api/missing") {
        res.statusCode = 404;
        res.end("nope");
      } else if (path === "/api/stream") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("part1");
        setTimeout(() => res.end("part2"), 50);
      } else if (path === "/api/hang-body") {
        res.writeHead(200);
        res.write("head");
        hanging.add(() => res.end());
      } else if (path === "/api/hang") {
        hanging.add(() => res.end());
      } else {
        res.statusCode = 500;
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const f of hanging) f();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const ctx = (signal: AbortSignal = new AbortController().signal): RunContext => ({
  signal,
  using: "run",
  jobId: 1n,
  metadata: {},
});
const settings = (baseUrl: string) =>
  toBinary(HttpRequestRunnerSettingsSchema, create(HttpRequestRunnerSettingsSchema, { baseUrl }));
const args = (a: MessageInitShape<typeof HttpRequestArgsSchema>) =>
  toBinary(HttpRequestArgsSchema, create(HttpRequestArgsSchema, a));
const instance = (base = `http://127.0.0.1:${port}/api/`) => httpRequestRunner.create(settings(base));

async function run(inst: RunnerInstance, a: MessageInitShape<typeof HttpRequestArgsSchema>, signal?: AbortSignal) {
  return fromBinary(HttpResponseResultSchema, await inst.run(args(a), ctx(signal)));
}


const header = (r: HttpResponseResult, key: string) => r.headers.filter((h) => h.key === key).map((h) => h.value);

describe("HTTP_REQUEST settings", () => {
  it("describes the runner and serves its protos", () => {
    expect(httpRequestRunner.id).toBe(2n);
    expect(httpRequestRunner.name).toBe("HTTP_REQUEST");
    expect(httpRequestRunner.settingsProto).toContain("message HttpRequestRunnerSettings");
    expect(httpRequestRunner.methods.run.argsProto).toContain("message HttpRequestArgs");
    expect(httpRequestRunner.methods.run.resultProto).toContain("message HttpResponseResult");
  });

  it("rejects a missing, malformed or non-http base_url as FATAL_ERROR", async () => {
    await expectRunnerError(httpRequestRunner.create(settings("")), "FATAL_ERROR", /base_url/);
    await expectRunnerError(httpRequestRunner.create(settings("not a url")), "FATAL_ERROR", /base_url/);
    await expectRunnerError(httpRequestRunner.create(settings("ftp://example.com/")), "FATAL_ERROR", /http/);
    await expectRunnerError(httpRequestRunner.create(new Uint8Array([0xff, 0xff])), "FATAL_ERROR", /settings/i);
  });
});

describe("HTTP_REQUEST run", () => {
  it("sends method, joined path, queries, headers and body; returns status, headers, content", async () => {
    const inst = await instance();
    const r = await run(inst, {
      method: "post",
      path: "/echo?z=9",
      queries: [
        { key: "a", value: "1" },
        { key: "b", value: "x y&" },
      ],
      headers: [{ key: "X-Test", value: "hello" }],
      body: '{"k":"v"}',
    });
    const req = seen.at(-1)!;
    expect(req.method).toBe("POST");
    const u = new URL(req.url, "http://x");
    expect(u.pathname).toBe("/api/echo");
    expect([...u.searchParams]).toEqual([
      ["z", "9"],
      ["a", "1"],
      ["b", "x y&"],
    ]);
    expect(req.headers["x-test"]).toBe("hello");
    expect(req.body).toBe('{"k":"v"}');

    expect(r.statusCode).toBe(200);
    expect(r.responseData).toEqual({ case: "content", value: 'echoed:{"k":"v"}' });
    expect(header(r, "x-custom")).toEqual(["yes"]);
    expect(header(r, "set-cookie")).toEqual(["a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT", "b=2"]);
    expect(header(r, "content-length")).toEqual(["16"]);
  });

  it("defaults to GET and joins paths without a slash on either side", async () => {
    const inst = await instance(`http://127.0.0.1:${port}/api`);
    const r = await run(inst, { path: "echo" });
    expect(r.statusCode).toBe(200);
    expect(seen.at(-1)!.method).toBe("GET");
    expect(seen.at(-1)!.url).toBe("/api/echo");
  });

  it("returns HTTP error statuses as results", async () => {
    const r = await run(await instance(), { path: "missing" });
    expect(r.statusCode).toBe(404);
    expect(r.responseData).toEqual({ case: "content", value: "nope" });
  });

  it("reuses the keep-alive connection across requests", async () => {
    const inst = await instance();
    for (let i = 0; i < 6; i++) await run(inst, { path: "echo" });
    // undici may alternate between two pooled sockets back to back; without keep-alive there would be 6.
    expect(new Set(seen.slice(-6).map((s) => s.remotePort)).size).toBeLessThanOrEqual(2);
  });

  it("rejects an invalid method or args as FATAL_ERROR", async () => {
    const inst = await instance();
    await expectRunnerError(run(inst, { method: "BAD METHOD", path: "echo" }), "FATAL_ERROR", /method/);
    await expectRunnerError(run(inst, { path: "echo", headers: [{ key: "bad header", value: "x" }] }), "FATAL_ERROR");
    await expectRunnerError(inst.run(new Uint8Array([0xff, 0xff]), ctx()), "FATAL_ERROR", /HttpRequestArgs/);
  });

  it("connection refused → ERROR_AND_RETRY", async () => {
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, "127.0.0.1", r));
    const deadPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
    const inst = await instance(`http://127.0.0.1:${deadPort}`);
    await expectRunnerError(run(inst, { path: "x" }), "ERROR_AND_RETRY", /ECONNREFUSED/);
  });

  it("abort rethrows the reason promptly", async () => {
    const inst = await instance();
    const ac = new AbortController();
    const reason = new Error("job timeout");
    setTimeout(() => ac.abort(reason), 50);
    const t0 = Date.now();
    expect(await rejection(run(inst, { path: "hang" }, ac.signal))).toBe(reason);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("abort with a non-Error reason → ERROR_AND_RETRY", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort("stop"), 50);
    await expectRunnerError(run(await instance(), { path: "hang" }, ac.signal), "ERROR_AND_RETRY", /cancelled/);
  });
});

describe("HTTP_REQUEST runStream", () => {
  const stream = async (a: MessageInitShape<typeof HttpRequestArgsSchema>, signal?: AbortSignal) =>
    (await instance()).runStream!(args(a), ctx(signal))[Symbol.asyncIterator]();

  it("yields status and headers first, then body chunks", async () => {
    const it = await stream({ path: "stream" });
    const msgs: HttpResponseResult[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) msgs.push(fromBinary(HttpResponseResultSchema, r.value));
    const [head, ...body] = msgs;
    expect(head.statusCode).toBe(200);
    expect(header(head, "content-type")).toEqual(["text/plain"]);
    expect(head.responseData.case).toBeUndefined();
    expect(body.length).toBeGreaterThanOrEqual(2); // the server paused between the parts
    expect(body.every((m) => m.responseData.case === "chunk")).toBe(true);
    expect(Buffer.concat(body.map((m) => m.responseData.value as Uint8Array)).toString()).toBe("part1part2");
  });

  it("abort while reading the body rethrows the reason", async () => {
    const ac = new AbortController();
    const it = await stream({ path: "hang-body" }, ac.signal);
    expect(fromBinary(HttpResponseResultSchema, (await it.next()).value as Uint8Array).statusCode).toBe(200);
    const chunk = fromBinary(HttpResponseResultSchema, (await it.next()).value as Uint8Array);
    expect(Buffer.from(chunk.responseData.value as Uint8Array).toString()).toBe("head");
    const pending = it.next();
    const reason = new Error("cancelled by test");
    ac.abort(reason);
    expect(await rejection(pending)).toBe(reason);
  });

  it("connection refused → ERROR_AND_RETRY", async () => {
    const inst = await httpRequestRunner.create(settings("http://127.0.0.1:1"));
    const it = inst.runStream!(args({ path: "x" }), ctx())[Symbol.asyncIterator]();
    await expectRunnerError(it.next(), "ERROR_AND_RETRY");
  });
});

describe("HTTP_REQUEST collectStream", () => {
  it("joins a real stream's body chunks into content and keeps status and headers, like run", async () => {
    const inst = await instance();
    const chunks: Uint8Array[] = [];
    for await (const c of inst.runStream!(args({ path: "stream" }), ctx())) chunks.push(c);
    const collected = fromBinary(HttpResponseResultSchema, httpRequestRunner.methods.run.collectStream!(chunks));
    const unary = await run(inst, { path: "stream" });
    expect(collected.statusCode).toBe(200);
    expect(collected.responseData).toEqual({ case: "content", value: "part1part2" });
    expect(collected.responseData).toEqual(unary.responseData);
    expect(header(collected, "content-type")).toEqual(["text/plain"]);
  });

  it("keeps a body that is not UTF-8 as chunk bytes", () => {
    const enc = (r: MessageInitShape<typeof HttpResponseResultSchema>) => toBinary(HttpResponseResultSchema, create(HttpResponseResultSchema, r));
    const out = fromBinary(
      HttpResponseResultSchema,
      collectHttpStream([enc({ statusCode: 201 }), enc({ responseData: { case: "chunk", value: new Uint8Array([0xff, 0x00]) } }), enc({ responseData: { case: "chunk", value: new Uint8Array([0xfe]) } })]),
    );
    expect(out.statusCode).toBe(201);
    expect(out.responseData).toEqual({ case: "chunk", value: new Uint8Array([0xff, 0x00, 0xfe]) });
  });
});
