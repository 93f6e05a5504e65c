// SLACK_POST_MESSAGE through gRPC against a local node:http server playing Slack's Web API (Slack itself cannot
// be reached from tests); the server is given its URL through SLACK_API_BASE_URL.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectAlive, uniqueName, useServer } from "../helpers/fixture.js";
import { servedCodec, type ServedCodec } from "../helpers/served_protos.js";

const SLACK_RUNNER_ID = 5;

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
  body: Record<string, any>;
}
const seen: Seen[] = [];
const flakyCalls = new Map<string, number>();
// Listen before the job server starts: its env must carry the URL.
const slack: Server = createServer((req, res) => {
  let raw = "";
  req.on("data", (c) => (raw += c));
  req.on("end", () => {
    const body = JSON.parse(raw || "{}");
    seen.push({ url: req.url!, headers: req.headers, body });
    const json = (status: number, o: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(o));
    };
    if (req.url !== "/api/chat.postMessage" || req.headers.authorization !== "Bearer xoxb-e2e") return json(200, { ok: false, error: "invalid_auth" });
    if (body.channel === "C-missing") return json(200, { ok: false, error: "channel_not_found" });
    if (body.channel === "C-limited") return json(429, { ok: false, error: "ratelimited" }, { "retry-after": "1" });
    if (body.channel === "C-flaky") {
      // rate limited the first time each text is posted, accepted on the retry
      const n = (flakyCalls.get(body.text) ?? 0) + 1;
      flakyCalls.set(body.text, n);
      if (n === 1) return json(429, { ok: false, error: "ratelimited" }, { "retry-after": "1" });
    }
    json(200, { ok: true, channel: "C0E2E", ts: "1700000000.000200", message: { type: "message", text: body.text, blocks: body.blocks } });
  });
});
await new Promise<void>((r) => slack.listen(0, "127.0.0.1", () => r()));
const fx = useServer({ env: { SLACK_API_BASE_URL: `http://127.0.0.1:${(slack.address() as AddressInfo).port}/api` } });

let codec: ServedCodec;
beforeAll(async () => {
  codec = await servedCodec(fx.api, "SLACK_POST_MESSAGE");
});
afterAll(async () => {
  await new Promise<void>((r) => slack.close(() => r()));
});

async function createSlackWorker(retry: Record<string, unknown> = { type: "NONE" }): Promise<string> {
  const { response } = await fx.api.worker.Create({
    name: uniqueName("slack"),
    runner_id: { value: SLACK_RUNNER_ID },
    runner_settings: codec.encodeSettings({ bot_token: "xoxb-e2e", bot_name: "e2e-bot" }),
    response_type: "DIRECT",
    retry_policy: retry,
  });
  return response.id.value;
}

async function enqueue(workerId: string, args: Record<string, unknown>) {
  const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: codec.encodeArgs(args) }, { timeoutMs: 20_000 });
  return response.result!.data;
}

describe("SLACK_POST_MESSAGE", () => {
  it("DIRECT: posts the message and returns channel, ts and the posted message", async () => {
    const workerId = await createSlackWorker();
    seen.length = 0;
    const r = await enqueue(workerId, {
      channel: "C-general",
      text: "deploy done",
      blocks: [JSON.stringify({ type: "section", text: { type: "plain_text", text: "deploy done" } })],
      attachments: [{ title: "build", fields: [{ title: "status", value: "green", short: true }] }],
    });
    expect(r.status).toBe("SUCCESS");
    const out = codec.decodeResult(r.output!.items);
    expect(out.channel).toBe("C0E2E");
    expect(out.ts).toBe("1700000000.000200");
    expect(JSON.parse(out.message)).toMatchObject({ text: "deploy done", blocks: [{ type: "section" }] });
    expect(seen).toHaveLength(1);
    expect(seen[0].url).toBe("/api/chat.postMessage");
    expect(seen[0].headers.authorization).toBe("Bearer xoxb-e2e");
    expect(seen[0].body).toEqual({
      channel: "C-general",
      text: "deploy done",
      blocks: [{ type: "section", text: { type: "plain_text", text: "deploy done" } }],
      attachments: [{ title: "build", fields: [{ title: "status", value: "green", short: true }] }],
      username: "e2e-bot",
    });
  });

  it("channel_not_found fails with FATAL_ERROR and the error code", async () => {
    const workerId = await createSlackWorker({ type: "CONSTANT", interval: 100, max_retry: 3 });
    seen.length = 0;
    const r = await enqueue(workerId, { channel: "C-missing", text: "x" });
    expect(r.status).toBe("FATAL_ERROR");
    expect(Buffer.from(r.output!.items).toString()).toMatch(/channel_not_found/);
    expect(seen, "a FATAL_ERROR is not retried").toHaveLength(1);
  });

  it("HTTP 429 ratelimited is retried per the worker's policy: MAX_RETRY when it persists, SUCCESS once it passes", async () => {
    const noRetry = await createSlackWorker();
    const limited = await enqueue(noRetry, { channel: "C-limited", text: "x" });
    expect(limited.status).toBe("MAX_RETRY");
    expect(Buffer.from(limited.output!.items).toString()).toMatch(/ratelimited \(retry after 1s\)/);

    const retrying = await createSlackWorker({ type: "CONSTANT", interval: 100, max_retry: 2 });
    const text = `flaky-${Date.now()}`;
    const ok = await enqueue(retrying, { channel: "C-flaky", text });
    expect(ok.status).toBe("SUCCESS");
    expect(flakyCalls.get(text)).toBe(2);
    await expectAlive(fx);
  });
});
