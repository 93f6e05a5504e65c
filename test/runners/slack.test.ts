// SLACK_POST_MESSAGE runner against a local node:http server playing Slack's Web API (Slack itself cannot be
// reached from tests): it checks the request path, auth header and JSON body, and answers like Slack does.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { SlackChatPostMessageArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/slack_args_pb.js";
import { SlackChatPostMessageResultSchema } from "../../worker-container/src/gen/jobworkerp/runner/slack_result_pb.js";
import { SlackRunnerSettingsSchema } from "../../worker-container/src/gen/jobworkerp/runner/slack_runner_pb.js";
import { slackPostMessageRunner } from "../../worker-container/src/runners/slack/index.js";
import type { RunContext } from "../../worker-container/src/runners/runner.js";
import { expectRunnerError } from "../helpers/runner_errors.js";

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Record<string, any>;
}
const seen: Seen[] = [];
let server: Server;
let base = "";

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const body = JSON.parse(raw || "{}");
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const json = (status: number, o: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(o));
      };
      if (req.url !== "/api/chat.postMessage") return json(404, { ok: false, error: "unknown_method" });
      if (req.headers.authorization === "Bearer xoxb-bad") return json(200, { ok: false, error: "invalid_auth" });
      if (body.channel === "C-missing") return json(200, { ok: false, error: "channel_not_found" });
      if (body.channel === "C-limited") return json(429, { ok: false, error: "ratelimited" }, { "retry-after": "7" });
      if (body.channel === "C-broken") {
        res.writeHead(502);
        return res.end("bad gateway");
      }
      json(200, { ok: true, channel: "C0123", ts: "1700000000.000100", message: { type: "message", text: body.text, username: body.username } });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

const ctx: RunContext = { signal: new AbortController().signal, using: "run", jobId: 1n, metadata: {} };
type Settings = MessageInitShape<typeof SlackRunnerSettingsSchema>;
type Args = MessageInitShape<typeof SlackChatPostMessageArgsSchema>;

async function post(args: Args, settings: Settings = { botToken: "xoxb-good", botName: "jobbot" }, apiBaseUrl = base) {
  const inst = await slackPostMessageRunner({ apiBaseUrl }).create(
    toBinary(SlackRunnerSettingsSchema, create(SlackRunnerSettingsSchema, settings)),
  );
  const out = await inst.run(toBinary(SlackChatPostMessageArgsSchema, create(SlackChatPostMessageArgsSchema, args)), ctx);
  return fromBinary(SlackChatPostMessageResultSchema, out);
}

describe("SLACK_POST_MESSAGE", () => {
  it("POSTs chat.postMessage with the bearer token and the mapped JSON body; returns channel, ts and message", async () => {
    seen.length = 0;
    const r = await post({
      channel: "C-ok",
      text: "hello *team*",
      blocks: [
        JSON.stringify({ type: "section", text: { type: "mrkdwn", text: "one" } }),
        JSON.stringify([{ type: "divider" }]),
      ],
      attachments: [{ color: "#36a64f", title: "Report", fields: [{ title: "Jobs", value: "42", short: true }], mrkdwnIn: ["text"], ts: 1700000000 }],
      threadTs: "1699999999.000200",
      unfurlLinks: false,
    });
    expect(seen).toHaveLength(1);
    const req = seen[0];
    expect(req.method).toBe("POST");
    expect(req.url).toBe("/api/chat.postMessage");
    expect(req.headers.authorization).toBe("Bearer xoxb-good");
    expect(req.headers["content-type"]).toMatch(/^application\/json/);
    expect(req.body).toEqual({
      channel: "C-ok",
      text: "hello *team*",
      blocks: [{ type: "section", text: { type: "mrkdwn", text: "one" } }, { type: "divider" }],
      attachments: [{ color: "#36a64f", title: "Report", fields: [{ title: "Jobs", value: "42", short: true }], mrkdwn_in: ["text"], ts: 1700000000 }],
      thread_ts: "1699999999.000200",
      unfurl_links: false,
      username: "jobbot", // bot_name, since the args have no username
    });
    expect(r.channel).toBe("C0123");
    expect(r.ts).toBe("1700000000.000100");
    expect(JSON.parse(r.message)).toEqual({ type: "message", text: "hello *team*", username: "jobbot" });
  });

  it("the args' username wins over bot_name", async () => {
    seen.length = 0;
    await post({ channel: "C-ok", text: "x", username: "override" });
    expect(seen[0].body.username).toBe("override");
  });

  it("Slack's {ok:false} answers fail the job with the error code: channel_not_found and invalid_auth are FATAL_ERROR", async () => {
    await expectRunnerError(post({ channel: "C-missing", text: "x" }), "FATAL_ERROR", /chat\.postMessage failed: channel_not_found/);
    await expectRunnerError(post({ channel: "C-ok", text: "x" }, { botToken: "xoxb-bad" }), "FATAL_ERROR", /invalid_auth/);
  });

  it("HTTP 429 ratelimited is ERROR_AND_RETRY with Retry-After; a 5xx is ERROR_AND_RETRY", async () => {
    await expectRunnerError(post({ channel: "C-limited", text: "x" }), "ERROR_AND_RETRY", /ratelimited \(retry after 7s\)/);
    await expectRunnerError(post({ channel: "C-broken", text: "x" }), "ERROR_AND_RETRY", /HTTP 502: bad gateway/);
  });

  it("bad settings/args are FATAL_ERROR before any request; an unreachable API is ERROR_AND_RETRY", async () => {
    seen.length = 0;
    await expectRunnerError(post({ channel: "C-ok" }, { botToken: "" }), "FATAL_ERROR", /bot_token is required/);
    await expectRunnerError(post({ channel: "", text: "x" }), "FATAL_ERROR", /channel is required/);
    await expectRunnerError(post({ channel: "C-ok", blocks: ["{not json"] }), "FATAL_ERROR", /blocks\[0\] is not valid JSON/);
    expect(seen).toHaveLength(0);
    // a port nothing listens on (the test server's, closed)
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, "127.0.0.1", () => r()));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    await expectRunnerError(post({ channel: "C-ok", text: "x" }, undefined, `http://127.0.0.1:${port}/api`), "ERROR_AND_RETRY", /ECONNREFUSED/);
  });
});
