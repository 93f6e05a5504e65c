// HTTP_REQUEST runner against a real node:http server started by the test.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HTTP_REQUEST_RUNNER_ID,
  decodeHttpResponse,
  encodeHttpArgs,
  encodeHttpSettings,
} from "../helpers/client.js";
import { uniqueName, useServer } from "../helpers/fixture.js";

const fx = useServer();

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
const seen: Seen[] = [];
let httpServer: http.Server;
let baseUrl = "";

beforeAll(async () => {
  httpServer = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const u = new URL(req.url!, "http://x");
      if (u.pathname === "/api/greet") {
        res.writeHead(200, { "content-type": "text/plain", "x-reply": "yes" });
        res.end(`hello ${u.searchParams.get("who")} (${req.headers["x-token"]})`);
      } else if (u.pathname === "/api/echo" && req.method === "POST") {
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ got: body }));
      } else {
        res.writeHead(404);
        res.end("nope");
      }
    });
  });
  await new Promise<void>((r) => httpServer.listen(0, "127.0.0.1", () => r()));
  baseUrl = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => httpServer.close(() => r()));
});

async function createHttpWorker(): Promise<string> {
  const { response } = await fx.api.worker.Create({
    name: uniqueName("http"),
    runner_id: { value: HTTP_REQUEST_RUNNER_ID },
    runner_settings: encodeHttpSettings({ base_url: baseUrl }),
    response_type: "DIRECT",
    retry_policy: { type: "NONE" },
  });
  return response.id.value;
}

describe("HTTP_REQUEST", () => {
  it("DIRECT GET with a query and a header returns status_code 200 and the body", async () => {
    const workerId = await createHttpWorker();
    seen.length = 0;
    const { response } = await fx.api.job.Enqueue(
      {
        worker_id: { value: workerId },
        args: encodeHttpArgs({
          method: "GET",
          path: "/api/greet",
          queries: [{ key: "who", value: "world" }],
          headers: [{ key: "x-token", value: "abc" }],
        }),
      },
      { timeoutMs: 15_000 },
    );
    const r = response.result!;
    expect(r.data.status).toBe("SUCCESS");
    const out = decodeHttpResponse(r.data.output!.items);
    expect(out.status_code).toBe(200);
    expect(out.content).toBe("hello world (abc)");
    const hdr = new Map(out.headers.map((h) => [h.key.toLowerCase(), h.value]));
    expect(hdr.get("x-reply")).toBe("yes");
    // what the HTTP server actually received
    expect(seen).toHaveLength(1);
    expect(seen[0].method).toBe("GET");
    expect(seen[0].url).toBe("/api/greet?who=world");
    expect(seen[0].headers["x-token"]).toBe("abc");
  });

  it("DIRECT POST sends the body and gets the status code and body back", async () => {
    const workerId = await createHttpWorker();
    seen.length = 0;
    const post = await fx.api.job.Enqueue(
      {
        worker_id: { value: workerId },
        args: encodeHttpArgs({ method: "POST", path: "/api/echo", body: "payload-123", headers: [{ key: "content-type", value: "text/plain" }] }),
      },
      { timeoutMs: 15_000 },
    );
    const out = decodeHttpResponse(post.response.result!.data.output!.items);
    expect(out.status_code).toBe(201);
    expect(JSON.parse(out.content!)).toEqual({ got: "payload-123" });
    expect(seen[0]).toMatchObject({ method: "POST", url: "/api/echo", body: "payload-123" });
  });
});
