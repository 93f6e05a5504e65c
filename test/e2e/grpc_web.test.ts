// gRPC-Web (USE_GRPC_WEB=true) on the gRPC port: protocol checks with Node's fetch (HTTP/1.1, hand-made
// frames) and the acceptance check in a real headless Chromium running a small admin page from another origin.
// Scalable: every front serves gRPC-Web; the fetch checks use the first front, the browser the last one.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMAND_RUNNER_ID, Status, collect, shArgs } from "../helpers/client.js";
import { expectAlive, sleep, uniqueName, useServer } from "../helpers/fixture.js";
import { REPO_ROOT, decodeMessage, encodeMessage } from "../helpers/protos.js";
import { E2E_SHAPE, freePort } from "../helpers/server.js";

const TOKEN = "grpc-web-token";
const MAX_MESSAGE_BYTES = 65_536;
const fx = useServer({
  env: { USE_GRPC_WEB: "true", AUTH_TOKEN: TOKEN, GRPC_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) },
  token: TOKEN,
});
const fronts = () => (fx.server.cluster?.addresses ?? [fx.server.address]).map((a) => `http://${a}`);

// ---- a gRPC-Web client just for these checks (framing by hand) ----
const frame = (payload: Uint8Array, flag = 0) => {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
};

/** Base64 text that may be several padded chunks back to back. */
function fromBase64Chunks(text: string): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i += 4) {
    if (text[i + 3] === "=") {
      parts.push(Buffer.from(text.slice(start, i + 4), "base64"));
      start = i + 4;
    }
  }
  parts.push(Buffer.from(text.slice(start), "base64"));
  return Buffer.concat(parts);
}

interface WebReply {
  http: number;
  headers: Headers;
  messages: Buffer[];
  /** From the trailer frame, or from the headers of a trailers-only response. */
  trailers: Record<string, string>;
  trailersOnly: boolean;
  code: number;
  message: string;
}

interface WebCallOptions {
  text?: boolean;
  token?: string | null;
  headers?: Record<string, string>;
  base?: string;
  /** Send this body as is instead of one frame holding the request. */
  rawBody?: Buffer | string;
}

async function webCall(method: string, request: Uint8Array, opts: WebCallOptions = {}): Promise<WebReply> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const body = opts.rawBody ?? (opts.text ? frame(request).toString("base64") : frame(request));
  const res = await fetch(`${opts.base ?? fronts()[0]}/${method}`, {
    method: "POST",
    headers: {
      "content-type": opts.text ? "application/grpc-web-text" : "application/grpc-web+proto",
      "x-grpc-web": "1",
      ...(token === null ? {} : { "jobworkerp-auth": token }),
      ...opts.headers,
    },
    body: typeof body === "string" ? body : new Uint8Array(body),
  });
  const raw = Buffer.from(await res.arrayBuffer());
  const bytes = opts.text ? fromBase64Chunks(raw.toString("latin1")) : raw;
  const messages: Buffer[] = [];
  let trailers: Record<string, string> = {};
  let trailerFrames = 0;
  for (let at = 0; at < bytes.length; ) {
    const len = bytes.readUInt32BE(at + 1);
    const payload = bytes.subarray(at + 5, at + 5 + len);
    expect(payload.length, "complete frame").toBe(len);
    if (bytes[at] & 0x80) {
      trailerFrames++;
      trailers = Object.fromEntries(
        payload.toString("latin1").split("\r\n").filter(Boolean).map((l) => [l.slice(0, l.indexOf(":")).trim(), l.slice(l.indexOf(":") + 1).trim()]),
      );
    } else {
      expect(trailerFrames, "no message after the trailer frame").toBe(0);
      messages.push(Buffer.from(payload));
    }
    at += 5 + len;
  }
  const trailersOnly = res.headers.has("grpc-status");
  if (trailersOnly) {
    expect(bytes.length, "trailers-only response has no body").toBe(0);
    trailers = Object.fromEntries([...res.headers].filter(([k]) => k.startsWith("grpc-") || k.endsWith("-bin")));
  } else if (res.status === 200) {
    expect(trailerFrames, "exactly one trailer frame").toBe(1);
  }
  return {
    http: res.status,
    headers: res.headers,
    messages,
    trailers,
    trailersOnly,
    code: Number(trailers["grpc-status"] ?? NaN),
    message: decodeURIComponent(trailers["grpc-message"] ?? ""),
  };
}

const W = "jobworkerp.service.WorkerService";
const J = "jobworkerp.service.JobService";
const workerData = (name: string, extra: Record<string, unknown> = {}) =>
  encodeMessage("jobworkerp.data.WorkerData", { name, runner_id: { value: COMMAND_RUNNER_ID }, retry_policy: { type: "NONE" }, ...extra });

async function createViaWeb(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await webCall(`${W}/Create`, workerData(name, extra));
  expect(r.code, r.message).toBe(Status.OK);
  return decodeMessage("jobworkerp.service.CreateWorkerResponse", r.messages[0]).id.value;
}

describe("gRPC-Web protocol (fetch, HTTP/1.1)", () => {
  it("unary, binary: WorkerService.Create; the worker is the one gRPC clients see on the same port", async () => {
    const name = uniqueName("web-bin");
    const r = await webCall(`${W}/Create`, workerData(name, { description: "über gRPC-Web" }));
    expect(r.http).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/grpc-web+proto");
    expect(r.trailersOnly).toBe(false);
    expect([r.code, r.messages.length]).toEqual([Status.OK, 1]);
    const id = decodeMessage("jobworkerp.service.CreateWorkerResponse", r.messages[0]).id.value;
    const { response } = await fx.api.worker.Find({ value: id });
    expect(response.data?.data.name).toBe(name);
    expect(response.data?.data.description).toBe("über gRPC-Web");
  });

  it("unary, text: WorkerService.Find with the request in two padded base64 chunks; the answer is base64", async () => {
    const name = uniqueName("web-text");
    const id = await createViaWeb(name);
    const f = frame(encodeMessage("jobworkerp.data.WorkerId", { value: id }));
    const body = f.subarray(0, 4).toString("base64") + f.subarray(4).toString("base64");
    const r = await webCall(`${W}/Find`, Buffer.alloc(0), { text: true, rawBody: body });
    expect(r.headers.get("content-type")).toBe("application/grpc-web-text+proto");
    expect(r.code, r.message).toBe(Status.OK);
    const found = decodeMessage("jobworkerp.service.OptionalWorkerResponse", r.messages[0]);
    expect(found.data.id.value).toBe(id);
    expect(found.data.data.name).toBe(name);
  });

  it("server streaming: WorkerService.FindList sends one frame per worker, then grpc-status 0 (binary and text)", async () => {
    const names = [uniqueName("web-list"), uniqueName("web-list"), uniqueName("web-list")];
    for (const n of names) await createViaWeb(n);
    const viaGrpc = (await collect(fx.api.worker.FindList({}))).map((w) => w.data.name).sort();
    for (const text of [false, true]) {
      const r = await webCall(`${W}/FindList`, encodeMessage("jobworkerp.service.FindWorkerListRequest", {}), { text });
      expect(r.code, r.message).toBe(Status.OK);
      const listed = r.messages.map((m) => decodeMessage("jobworkerp.data.Worker", m).data.name as string);
      expect(listed).toEqual(expect.arrayContaining(names));
      expect(listed.sort()).toEqual(viaGrpc);
    }
  });

  it("EnqueueForStream: x-job-id-bin header, CommandResult chunks, status 0; a failed job's status and x-job-result-bin come in the trailer frame", async () => {
    const workerId = await createViaWeb(uniqueName("web-stream"));
    const ok = await webCall(`${J}/EnqueueForStream`, encodeMessage("jobworkerp.service.JobRequest", { worker_id: { value: workerId }, args: shArgs("echo a; echo b") }));
    expect(ok.code, ok.message).toBe(Status.OK);
    const jobId = decodeMessage("jobworkerp.data.JobId", Buffer.from(ok.headers.get("x-job-id-bin")!, "base64")).value;
    expect(Number(jobId)).toBeGreaterThan(0);
    const items = ok.messages.map((m) => decodeMessage("jobworkerp.data.ResultOutputItem", m));
    expect(items.at(-1)!.item).toBe("end");
    const stdout = items.filter((i) => i.item === "data").map((i) => decodeMessage("jobworkerp.runner.CommandResult", i.data).stdout ?? "").join("");
    expect(stdout).toBe("a\nb\n");

    const failed = await webCall(`${J}/EnqueueForStream`, encodeMessage("jobworkerp.service.JobRequest", {
      worker_id: { value: workerId },
      args: shArgs("exit 3", { treat_nonzero_as_error: true }),
    }));
    expect(failed.trailersOnly, "headers (x-job-id-bin) went first, so the status is in the trailer frame").toBe(false);
    expect(failed.headers.get("x-job-id-bin")).toBeTruthy();
    const jr = decodeMessage("jobworkerp.data.JobResult", Buffer.from(failed.trailers["x-job-result-bin"], "base64"));
    expect(jr.data.status).toBe("MAX_RETRY");
    expect(failed.code).toBe(Status.ABORTED);
  });

  it("auth: no token or a wrong one is UNAUTHENTICATED, answered trailers-only", async () => {
    for (const token of [null, "wrong-token"]) {
      const r = await webCall(`${W}/CountBy`, Buffer.alloc(0), { token });
      expect([r.http, r.trailersOnly, r.code]).toEqual([200, true, Status.UNAUTHENTICATED]);
      expect(r.message).toMatch(/auth token/);
    }
  });

  it("an unknown method and a bidi-streaming method answer UNIMPLEMENTED", async () => {
    const unknown = await webCall(`${W}/NoSuchMethod`, Buffer.alloc(0));
    expect(unknown.code).toBe(Status.UNIMPLEMENTED);
    const bidi = await webCall(`${J}/EnqueueWithClientStream`, Buffer.alloc(0));
    expect(bidi.code).toBe(Status.UNIMPLEMENTED);
    expect(bidi.message).toMatch(/gRPC-Web/);
  });

  it("malformed bodies are INVALID_ARGUMENT, other content types 415, GET 405; the server keeps serving", async () => {
    const count = `${W}/CountBy`;
    const cases: [string, WebCallOptions][] = [
      ["truncated frame", { rawBody: frame(Buffer.from([8, 1])).subarray(0, 6) }],
      ["no frame at all", { rawBody: Buffer.alloc(0) }],
      ["two frames", { rawBody: Buffer.concat([frame(Buffer.alloc(0)), frame(Buffer.alloc(0))]) }],
      ["undecodable protobuf", { rawBody: frame(Buffer.from([0xff, 0xff, 0xff])) }],
      ["a trailer frame as request", { rawBody: frame(Buffer.alloc(0), 0x80) }],
      ["text body that is not base64", { text: true, rawBody: "not*base64!" }],
      ["malformed grpc-timeout", { headers: { "grpc-timeout": "soon" } }],
    ];
    for (const [what, opts] of cases) {
      const r = await webCall(count, Buffer.alloc(0), opts);
      expect(r.code, `${what}: ${r.message}`).toBe(Status.INVALID_ARGUMENT);
    }
    const json = await fetch(`${fronts()[0]}/${count}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(json.status).toBe(415);
    const get = await fetch(`${fronts()[0]}/${count}`);
    expect(get.status).toBe(405);
    await expectAlive(fx);
  });

  it("a request above GRPC_MAX_MESSAGE_BYTES is RESOURCE_EXHAUSTED (binary and text)", async () => {
    for (const text of [false, true]) {
      const r = await webCall(`${W}/Create`, workerData(uniqueName("big"), { description: "x".repeat(MAX_MESSAGE_BYTES + 10) }), { text });
      expect(r.code, r.message).toBe(Status.RESOURCE_EXHAUSTED);
    }
  });

  it("grpc-timeout: a DIRECT job running past the deadline ends with DEADLINE_EXCEEDED", async () => {
    const workerId = await createViaWeb(uniqueName("web-deadline"), { response_type: "DIRECT" });
    const r = await webCall(`${J}/Enqueue`, encodeMessage("jobworkerp.service.JobRequest", { worker_id: { value: workerId }, args: shArgs("sleep 3") }), {
      headers: { "grpc-timeout": "300m" },
    });
    expect(r.code, r.message).toBe(Status.DEADLINE_EXCEEDED);
  });

  it("a client that goes away during an open stream (ListenByWorker) leaves the server serving", async () => {
    const workerId = await createViaWeb(uniqueName("web-gone"), { broadcast_results: true });
    const ac = new AbortController();
    const listening = fetch(`${fronts()[0]}/jobworkerp.service.JobResultService/ListenByWorker`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "jobworkerp-auth": TOKEN },
      body: new Uint8Array(frame(encodeMessage("jobworkerp.service.ListenByWorkerRequest", { worker_id: { value: workerId } }))),
      signal: ac.signal,
    });
    await sleep(300);
    ac.abort();
    await expect(listening).rejects.toThrow();
    await expectAlive(fx);
  });

  it("CORS: preflight OPTIONS allows POST and the asked headers; responses expose grpc-status, grpc-message, x-job-id-bin", async () => {
    const pre = await fetch(`${fronts()[0]}/${W}/CountBy`, {
      method: "OPTIONS",
      headers: { origin: "http://admin.example:8080", "access-control-request-method": "POST", "access-control-request-headers": "content-type,jobworkerp-auth,x-grpc-web" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    expect(pre.headers.get("access-control-allow-methods")).toMatch(/POST/);
    expect(pre.headers.get("access-control-allow-headers")).toMatch(/jobworkerp-auth/);
    const r = await webCall(`${W}/CountBy`, Buffer.alloc(0), { headers: { origin: "http://admin.example:8080" } });
    expect(r.code).toBe(Status.OK);
    expect(r.headers.get("access-control-allow-origin")).toBe("*");
    const exposed = r.headers.get("access-control-expose-headers")!.split(/,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(["grpc-status", "grpc-message", "x-job-id-bin", "x-job-result-bin"]));
  });
});

// ---- acceptance: a real browser ----
const FIXTURE_DIR = path.join(REPO_ROOT, "test/fixtures/grpc_web");
const ARTIFACT_DIR = path.join(REPO_ROOT, "test/artifacts");
const CHROMIUM = "/usr/bin/chromium";

describe("gRPC-Web from headless Chromium (page on another origin)", () => {
  let pageServer: http.Server;
  let pageOrigin = "";
  beforeAll(async () => {
    // serves only the fixture page and its script
    pageServer = http.createServer((req, res) => {
      const file = { "/index.html": "index.html", "/client.js": "client.js" }[req.url?.split("?")[0] ?? ""];
      if (!file) return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": file.endsWith(".js") ? "text/javascript" : "text/html; charset=utf-8" });
      res.end(fs.readFileSync(path.join(FIXTURE_DIR, file)));
    });
    const port = await freePort();
    await new Promise<void>((r) => pageServer.listen(port, "127.0.0.1", r));
    pageOrigin = `http://localhost:${port}`;
  });
  afterAll(() => pageServer?.close());

  it("lists workers (streamed), creates a COMMAND worker, runs a DIRECT echo and shows the decoded result", { timeout: 90_000 }, async () => {
    expect(fs.existsSync(CHROMIUM), `${CHROMIUM} missing (scripts/test.sh installs Debian's chromium)`).toBe(true);
    const server = fronts().at(-1)!;
    const name = uniqueName("browser");
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage();
      const consoleLines: string[] = [];
      page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
      const q = new URLSearchParams({ server, token: TOKEN, name });
      await page.goto(`${pageOrigin}/index.html?${q}`);
      await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 60_000 });
      fs.mkdirSync(ARTIFACT_DIR, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACT_DIR, `grpc_web-${E2E_SHAPE}.png`), fullPage: true });
      const state = await page.getAttribute("body", "data-state");
      const text = (await page.textContent("#result")) ?? "";
      expect(state, `page failed: ${text}\n${consoleLines.join("\n")}`).toBe("done");

      const result = JSON.parse(text);
      expect(result.workers).toContain(name);
      expect(result.workers.length).toBe(result.workersBefore + 1);
      expect(result).toMatchObject({ status: 0, exitCode: 0, stdout: "hello from chromium\n" });
      expect(Number(result.jobId)).toBeGreaterThan(0);
      expect(await page.locator("#workers li", { hasText: name }).count()).toBe(1);
      // the worker the page created is a real one, seen over gRPC
      const { response } = await fx.api.worker.FindByName({ name });
      expect(response.data?.id.value).toBe(result.workerId);
      expect(response.data?.data.response_type).toBe("DIRECT");
    } finally {
      await browser.close();
    }
  });
});
