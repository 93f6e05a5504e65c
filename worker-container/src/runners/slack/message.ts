// SlackChatPostMessageArgs → the JSON body of Slack's chat.postMessage.
import type {
  SlackChatPostMessageArgs,
  SlackChatPostMessageArgs_Attachment,
} from "../../gen/jobworkerp/runner/slack_args_pb.js";
import { RunnerError } from "../runner.js";

type Json = Record<string, unknown>;

/** Drops unset (undefined) members so Slack sees only what the job set. */
function defined(o: Json): Json {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function attachment(a: SlackChatPostMessageArgs_Attachment): Json {
  return defined({
    color: a.color,
    author_icon: a.authorIcon,
    author_link: a.authorLink,
    author_name: a.authorName,
    fallback: a.fallback,
    fields: a.fields.length ? a.fields.map((f) => defined({ title: f.title, value: f.value, short: f.short })) : undefined,
    footer: a.footer,
    footer_icon: a.footerIcon,
    image_url: a.imageUrl,
    mrkdwn_in: a.mrkdwnIn.length ? a.mrkdwnIn : undefined,
    pretext: a.pretext,
    text: a.text,
    title: a.title,
    title_link: a.titleLink,
    thumb_url: a.thumbUrl,
    ts: a.ts,
  });
}

/** Each `blocks` entry is one JSON block object, or a JSON array of them. */
function blocks(raw: string[]): unknown[] | undefined {
  if (raw.length === 0) return undefined;
  return raw.flatMap((s, i) => {
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      throw new RunnerError("FATAL_ERROR", `blocks[${i}] is not valid JSON: ${(e as Error).message}`);
    }
    if (Array.isArray(v)) return v;
    if (v === null || typeof v !== "object") throw new RunnerError("FATAL_ERROR", `blocks[${i}] must be a JSON object or array`);
    return [v];
  });
}

export function postMessageBody(a: SlackChatPostMessageArgs, botName: string | undefined): Json {
  if (!a.channel) throw new RunnerError("FATAL_ERROR", "channel is required");
  return defined({
    channel: a.channel,
    text: a.text,
    blocks: blocks(a.blocks),
    attachments: a.attachments.length ? a.attachments.map(attachment) : undefined,
    icon_emoji: a.iconEmoji,
    icon_url: a.iconUrl,
    link_names: a.linkNames,
    mrkdwn: a.mrkdwn,
    parse: a.parse,
    reply_broadcast: a.replyBroadcast,
    thread_ts: a.threadTs,
    unfurl_links: a.unfurlLinks,
    unfurl_media: a.unfurlMedia,
    username: a.username ?? botName,
  });
}
