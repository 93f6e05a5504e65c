// `jobworkerp workflow run FILE [--input JSON] [--events]` runs a workflow in this process (the embedded
// shape: in-memory queue, a throw-away SQLite file, no gRPC server). Output JSON on stdout, exit 0; on a fault
// the error object on stdout, exit 1; --events writes one JSON line per event to stderr.
// `jobworkerp workflow validate FILE` only loads and validates.
import { rm, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { compose } from "../../cli/compose.js";
import { loadConfig } from "../../cli/config.js";
import { DefinitionError } from "./errors.js";
import { workflowRunnerOptions } from "./index.js";
import { SystemJobHost } from "./system_host.js";
import { prepareWorkflow, runWorkflow } from "./workflow.js";

const USAGE = `usage: jobworkerp workflow run FILE [--input JSON] [--events]
       jobworkerp workflow validate FILE
  FILE is a path or an http(s) URL of a YAML or JSON workflow.`;

function parse(args: string[]): { cmd?: string; file?: string; input?: string; events: boolean; bad?: string } {
  const out: ReturnType<typeof parse> = { events: false };
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--events") out.events = true;
    else if (a === "--input") {
      if (i + 1 >= args.length) return { ...out, bad: "--input needs a JSON value" };
      out.input = args[++i];
    } else if (a.startsWith("--input=")) out.input = a.slice(8);
    else if (a.startsWith("-")) return { ...out, bad: `unknown option ${a}` };
    else rest.push(a);
  }
  [out.cmd, out.file] = rest;
  if (rest.length > 2) out.bad = `unexpected argument ${rest[2]}`;
  return out;
}

export async function runWorkflowCommand(args: string[]): Promise<number> {
  const o = parse(args);
  if (args.includes("-h") || args.includes("--help")) {
    console.log(USAGE);
    return 0;
  }
  if (o.bad || !o.file || (o.cmd !== "run" && o.cmd !== "validate")) {
    console.error(`${o.bad ?? "expected 'run FILE' or 'validate FILE'"}\n${USAGE}`);
    return 2;
  }
  let input: unknown = {};
  if (o.input !== undefined) {
    try {
      input = JSON.parse(o.input);
    } catch (e) {
      console.error(`--input is not JSON: ${(e as Error).message}`);
      return 2;
    }
  }
  const cfg = loadConfig("all-in-one");
  const loadOptions = { allowPrivateUrls: cfg.workflow.allowPrivateUrls };
  if (o.cmd === "validate") {
    try {
      await prepareWorkflow({ url: o.file }, loadOptions);
      console.log(JSON.stringify({ valid: true }));
      return 0;
    } catch (e) {
      console.log(JSON.stringify({ valid: false, problems: e instanceof DefinitionError ? e.problems : [(e as Error).message] }));
      return 1;
    }
  }

  // a private, throw-away embedded system: its SQLite file lives in a temporary directory
  const dir = await mkdtemp(join(tmpdir(), "jobworkerp-workflow-"));
  // stdout carries the result: logs go to stderr, and only warnings unless LOG_LEVEL asks for more
  const log = pino({ level: cfg.logLevel === "info" ? "warn" : cfg.logLevel }, pino.destination(2));
  const running = await compose({ ...cfg, storageType: "Standalone", sqliteUrl: `sqlite://${join(dir, "db.sqlite3")}?mode=rwc` }, log);
  try {
    const host = new SystemJobHost(running.system);
    let def;
    try {
      def = await prepareWorkflow({ url: o.file }, { ...loadOptions, host });
    } catch (e) {
      const problems = e instanceof DefinitionError ? e.problems : [(e as Error).message];
      console.log(JSON.stringify({ type: "https://serverlessworkflow.io/spec/1.0.0/errors/configuration", status: 400, title: "invalid workflow", detail: problems.join("; ") }));
      return 1;
    }
    const ctrl = new AbortController();
    const onSignal = () => ctrl.abort(new Error("interrupted"));
    process.once("SIGINT", onSignal);
    const out = await runWorkflow(def, {
      input,
      host,
      signal: ctrl.signal,
      // streaming_data bytes as base64, as protobuf JSON has them
      onEvent: o.events ? (e) => process.stderr.write(JSON.stringify(e, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v)) + "\n") : undefined,
      loadOptions,
      ...workflowRunnerOptions(cfg),
    });
    process.off("SIGINT", onSignal);
    console.log(JSON.stringify(out.status === "Completed" || out.status === "Waiting" ? out.output : out.error));
    return out.status === "Completed" || out.status === "Waiting" ? 0 : 1;
  } finally {
    await running.stopWork();
    await running.close();
    await rm(dir, { recursive: true, force: true });
  }
}
