// The JSON-lines protocol between the runner and a child (python/jobworkerp_worker.py is its Python side).
//
//   runner → child (stdin), one line per job:
//     {"job_id":"<decimal>","args":<the job's JSON>,"retried":0,"max_retry":3,"channel":"c","using":"run"}
//   child → runner (stdout):
//     {"ready":true}                            once initialised (or the configured ready_line; LONG_RUNNING)
//     {"job_id":"…","result":<JSON>}             success
//     {"job_id":"…","error":"message","retry":false}   failure; retry false: never retried, whatever the policy
//     {"job_id":"…","retry":false}               (no result/error) if the child dies before answering this job,
//                                               do not retry it (e.g. it has started a side effect)
//   Any other stdout line is logged and ignored.
//
// job_id is a string: snowflake ids exceed 2^53. The args and the result travel verbatim (never re-serialised,
// which would round big integers): the args text only has its raw line breaks (legal JSON whitespace, never
// inside strings) turned into spaces, and the result is cut out of the child's line as written.
import { fromBinary } from "@bufbuild/protobuf";
import { SupervisedArgsSchema } from "../../gen/jobworkerp/runner/supervised_args_pb.js";
import { RunnerError, type RunContext } from "../runner.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The job's payload as one-line JSON text: SupervisedArgs.json, or the args bytes when they are a JSON object. */
export function argsJson(bytes: Uint8Array): string {
  let text: string;
  if (bytes.length > 0 && bytes[0] === 0x7b /* '{' */) {
    try {
      text = utf8.decode(bytes);
    } catch {
      throw new RunnerError("FATAL_ERROR", "args are neither SupervisedArgs nor UTF-8 JSON");
    }
  } else {
    try {
      text = fromBinary(SupervisedArgsSchema, bytes).json;
    } catch (e) {
      throw new RunnerError("FATAL_ERROR", `invalid SupervisedArgs: ${(e as Error).message}`);
    }
  }
  if (text.trim() === "") return "null";
  try {
    JSON.parse(text);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `args json is not valid JSON: ${(e as Error).message}`);
  }
  return text.replace(/[\r\n]/g, " ");
}

export function jobLine(jobId: string, args: string, ctx: Pick<RunContext, "using" | "retried" | "maxRetry" | "channel">): string {
  const meta = JSON.stringify({ retried: ctx.retried ?? 0, max_retry: ctx.maxRetry ?? 0, channel: ctx.channel ?? "", using: ctx.using });
  return `{"job_id":${JSON.stringify(jobId)},"args":${args},${meta.slice(1)}\n`;
}

export type ChildMessage =
  | { kind: "result"; jobId: string; json: string }
  | { kind: "error"; jobId: string; message: string; retry: boolean }
  | { kind: "no_retry"; jobId: string }
  | { kind: "other" };

/** A stdout line as a protocol message ("other": not about a job, e.g. a stray print). */
export function parseChildLine(line: string): ChildMessage {
  const t = line.trim();
  if (!t.startsWith("{")) return { kind: "other" };
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(t) as Record<string, unknown>;
  } catch {
    return { kind: "other" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v) || !("job_id" in v)) return { kind: "other" };
  const jobId = String(v.job_id);
  if ("result" in v) return { kind: "result", jobId, json: memberText(t, "result") ?? "null" };
  if ("error" in v) {
    const message = typeof v.error === "string" ? v.error : JSON.stringify(v.error);
    return { kind: "error", jobId, message, retry: v.retry !== false };
  }
  if (v.retry === false) return { kind: "no_retry", jobId };
  return { kind: "other" };
}

/** Whether a line is the child's ready line: the configured text, or a JSON object with "ready": true. */
export function isReadyLine(line: string, readyLine: string | undefined): boolean {
  const t = line.trim();
  if (readyLine !== undefined) return t === readyLine.trim();
  if (!t.startsWith("{")) return false;
  try {
    return (JSON.parse(t) as { ready?: unknown })?.ready === true;
  } catch {
    return false;
  }
}

/**
 * The source text of a top-level member's value in a valid JSON object text (the last one, as JSON.parse keeps).
 * A small scanner: it only has to skip values, as the text has already parsed.
 */
export function memberText(text: string, key: string): string | undefined {
  let i = text.indexOf("{") + 1;
  let found: string | undefined;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const skipString = () => {
    i++; // opening quote
    while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    i++;
  };
  const skipValue = () => {
    const c = text[i];
    if (c === '"') return skipString();
    if (c === "{" || c === "[") {
      let depth = 0;
      do {
        const d = text[i];
        if (d === '"') {
          skipString();
          continue;
        }
        if (d === "{" || d === "[") depth++;
        else if (d === "}" || d === "]") depth--;
        i++;
      } while (depth > 0);
      return;
    }
    while (i < text.length && !",}] \t\n\r".includes(text[i])) i++; // number, true, false, null
  };
  for (;;) {
    ws();
    if (text[i] !== '"') return found; // "}" of an empty or finished object
    const keyStart = i;
    skipString();
    const name = JSON.parse(text.slice(keyStart, i)) as string;
    ws();
    i++; // ':'
    ws();
    const start = i;
    skipValue();
    if (name === key) found = text.slice(start, i);
    ws();
    if (text[i] === ",") i++;
  }
}
