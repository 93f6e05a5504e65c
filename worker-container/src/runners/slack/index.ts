// SLACK_POST_MESSAGE runner: posts a message with Slack's chat.postMessage (bot token from the worker's settings).
// The API base URL comes from config (SLACK_API_BASE_URL) so a deployment can go through a proxy and tests can use
// a local server.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import { SlackChatPostMessageArgsSchema } from "../../gen/jobworkerp/runner/slack_args_pb.js";
import { SlackChatPostMessageResultSchema } from "../../gen/jobworkerp/runner/slack_result_pb.js";
import { SlackRunnerSettingsSchema } from "../../gen/jobworkerp/runner/slack_runner_pb.js";
import { abortError } from "../command/process.js";
import { protoText } from "../proto_text.js";
import { RunnerError, type RunContext, type RunnerDefinition, type RunnerInstance } from "../runner.js";
import { slackApiError, slackHttpError } from "./errors.js";
import { postMessageBody } from "./message.js";

function decode<D extends DescMessage>(schema: D, bytes: Uint8Array, what: string): MessageShape<D> {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid ${what}: ${(e as Error).message}`);
  }
}

interface SlackAnswer {
  ok?: boolean;
  error?: string;
  channel?: string;
  ts?: string;
  message?: unknown;
}

class SlackInstance implements RunnerInstance {
  constructor(
    private readonly endpoint: string,
    private readonly token: string,
    private readonly botName: string | undefined,
  ) {}

  async run(bytes: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
    const body = postMessageBody(decode(SlackChatPostMessageArgsSchema, bytes, "SlackChatPostMessageArgs"), this.botName);
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.endpoint, {
        method: "POST",
        headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json; charset=utf-8" },
        body: JSON.stringify(body),
        signal: ctx.signal,
      });
      text = await res.text();
    } catch (e) {
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      const err = e as Error & { cause?: { code?: string; message?: string } };
      throw new RunnerError("ERROR_AND_RETRY", `slack chat.postMessage failed: ${err.cause?.code ?? err.cause?.message ?? err.message}`);
    }
    const retryAfter = res.headers.get("retry-after");
    let answer: SlackAnswer | undefined;
    try {
      answer = JSON.parse(text) as SlackAnswer;
    } catch {
      // not JSON: judged by the HTTP status below
    }
    if (answer?.ok === false) throw slackApiError(answer.error ?? "unknown_error", retryAfter);
    if (res.status !== 200 || !answer?.ok) throw slackHttpError(res.status, retryAfter, answer ? "" : text);
    return toBinary(
      SlackChatPostMessageResultSchema,
      create(SlackChatPostMessageResultSchema, {
        channel: answer.channel ?? "",
        ts: answer.ts ?? "",
        message: answer.message === undefined ? "" : JSON.stringify(answer.message),
      }),
    );
  }
}

export interface SlackRunnerOptions {
  /** Slack Web API base URL (config SLACK_API_BASE_URL). */
  apiBaseUrl: string;
}

export function slackPostMessageRunner(opts: SlackRunnerOptions): RunnerDefinition {
  const endpoint = `${opts.apiBaseUrl.replace(/\/+$/, "")}/chat.postMessage`;
  return {
    id: 5n,
    name: "SLACK_POST_MESSAGE",
    description: "Posts a message to a Slack channel with chat.postMessage; returns the channel, ts and the posted message.",
    runnerType: RunnerType.SLACK_POST_MESSAGE,
    settingsProto: protoText("jobworkerp/runner/slack_runner.proto"),
    settingsSchema: SlackRunnerSettingsSchema,
    methods: {
      run: {
        argsProto: protoText("jobworkerp/runner/slack_args.proto"),
        resultProto: protoText("jobworkerp/runner/slack_result.proto"),
        argsSchema: SlackChatPostMessageArgsSchema,
        resultSchema: SlackChatPostMessageResultSchema,
        description: "Post one message (text, blocks and/or attachments).",
        outputType: StreamingOutputType.NON_STREAMING,
      },
    },
    async create(settings: Uint8Array) {
      const s = decode(SlackRunnerSettingsSchema, settings, "SlackRunnerSettings");
      if (!s.botToken) throw new RunnerError("FATAL_ERROR", "bot_token is required");
      // A token with a newline would be rejected by fetch as a bad header: say so up front.
      if (/[\r\n]/.test(s.botToken)) throw new RunnerError("FATAL_ERROR", "bot_token contains a line break");
      return new SlackInstance(endpoint, s.botToken, s.botName || undefined);
    },
  };
}
