// Tools of a running jobworkerp deployment, reached through its FunctionService over gRPC
// (`jobworkerp mcp --address host:port`): FindList / FindListBySet describe the functions with JSON Schemas,
// Call runs one as a DIRECT job. Cancelling a call cancels the RPC, and the front then cancels the job.
// Tool names and parameters follow core/functions.ts's tools (`<function>__<method>` for multi-method
// functions; a runner with settings takes {settings, arguments}), so both shapes offer the same tools.
import * as grpc from "@grpc/grpc-js";
import { serviceClient } from "../api/client.js";
import { AppError } from "../core/errors.js";
import { ResultStatus } from "../gen/jobworkerp/data/common_pb.js";
import type { FunctionResult, FunctionSpecs } from "../gen/jobworkerp/function/data/function_pb.js";
import { FunctionService } from "../gen/jobworkerp/function/service/function_pb.js";
import type { ToolCallOutcome, ToolListOptions, ToolSpec } from "../runners/llm/tools.js";
import type { McpToolHost } from "./tool_server.js";

type Client = grpc.Client & Record<string, (req: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<unknown>>;

interface RemoteTool {
  spec: ToolSpec;
  kind: "runner" | "worker";
  /** What FunctionService.Call takes as the name (`<function>__<method>` picks a method). */
  callName: string;
  wrapsSettings: boolean;
}

const toolName = (raw: string) => raw.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || "_";

function parseSchema(text: string | undefined): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text || "{}");
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* an unreadable schema leaves the arguments open */
  }
  return { type: "object" };
}

function toolsOf(s: FunctionSpecs): RemoteTool[] {
  const isWorker = s.workerId !== undefined;
  const methods = Object.entries(s.methods?.schemas ?? {});
  return methods.map(([method, m]) => {
    const multi = methods.length > 1;
    const args = parseSchema(m.argumentsSchema);
    const wrapsSettings = !isWorker && !!s.settingsSchema.trim();
    const parameters = wrapsSettings
      ? { type: "object", properties: { settings: parseSchema(s.settingsSchema), arguments: args }, required: ["arguments"] }
      : args;
    const description = isWorker ? s.description || `worker ${s.name}` : [s.description, m.description].filter(Boolean).join(" — ");
    return {
      spec: { name: toolName(multi ? `${s.name}__${method}` : s.name), description, parameters },
      kind: isWorker ? "worker" : "runner",
      callName: multi ? `${s.name}__${method}` : s.name,
      wrapsSettings,
    };
  });
}

/** A gRPC failure as an Error; INVALID_ARGUMENT stays recognisable (the caller's arguments were wrong). */
function fromGrpc(e: unknown): Error {
  const err = e as grpc.ServiceError;
  if (err.code === undefined) return e as Error;
  const text = err.details || err.message;
  return err.code === grpc.status.INVALID_ARGUMENT ? new AppError("INVALID_ARGUMENT", text) : new Error(`${grpc.status[err.code]}: ${text}`);
}

export class RemoteFunctions implements McpToolHost {
  private readonly client: Client;
  private readonly md = new grpc.Metadata();

  constructor(
    address: string,
    authToken: string | undefined,
    private readonly timeoutMs: number,
  ) {
    this.client = serviceClient(FunctionService, address) as Client;
    if (authToken) this.md.set("jobworkerp-auth", authToken);
  }

  private async collect<T>(method: string, req: unknown, signal?: AbortSignal): Promise<T[]> {
    const call = this.client[method](req, this.md.clone());
    const cancel = () => call.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    const out: T[] = [];
    try {
      for await (const m of call as AsyncIterable<T>) out.push(m);
    } catch (e) {
      if (signal?.aborted) throw new Error("cancelled");
      throw fromGrpc(e);
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
    return out;
  }

  private async tools(opts: ToolListOptions): Promise<RemoteTool[]> {
    const specs = opts.functionSetName
      ? await this.collect<FunctionSpecs>("findListBySet", { name: opts.functionSetName })
      : await this.collect<FunctionSpecs>("findList", { excludeRunner: !opts.useRunners, excludeWorker: !opts.useWorkers });
    const byName = new Map<string, RemoteTool>();
    // first one of a name wins; the front lists workers before runners, as the embedded tools do
    for (const s of specs) for (const t of toolsOf(s)) if (!byName.has(t.spec.name)) byName.set(t.spec.name, t);
    return [...byName.values()];
  }

  async list(opts: ToolListOptions): Promise<ToolSpec[]> {
    return (await this.tools(opts)).map((t) => t.spec);
  }

  async call(
    name: string,
    argsJson: string,
    signal: AbortSignal,
    onStarted?: (jobId: bigint) => void,
    scope: ToolListOptions = { useWorkers: true, useRunners: true },
  ): Promise<ToolCallOutcome> {
    const tool = (await this.tools(scope)).find((t) => t.spec.name === name);
    if (!tool) throw new AppError("NOT_FOUND", `no tool named '${name}'`);
    let args: Record<string, unknown>;
    try {
      args = JSON.parse(argsJson || "{}") as Record<string, unknown>;
    } catch (e) {
      throw new AppError("INVALID_ARGUMENT", `arguments are not JSON: ${(e as Error).message}`);
    }
    const req = {
      name: { case: tool.kind === "worker" ? "workerName" : "runnerName", value: tool.callName },
      argsJson: JSON.stringify((tool.wrapsSettings ? args.arguments : args) ?? {}),
      runnerParameters: tool.wrapsSettings ? { settingsJson: JSON.stringify(args.settings ?? {}) } : undefined,
      options: { timeoutMs: BigInt(this.timeoutMs) },
    };
    const results = await this.collect<FunctionResult>("call", req, signal);
    const last = results[results.length - 1];
    if (!last) throw new Error(`tool '${name}' ended without a result`);
    const jobId = last.lastInfo?.jobId ? BigInt(last.lastInfo.jobId) : undefined;
    if (jobId !== undefined) onStarted?.(jobId);
    if (last.status !== undefined && last.status !== ResultStatus.SUCCESS) {
      throw new Error(`${last.errorCode || ResultStatus[last.status]}: ${last.errorMessage ?? ""}`);
    }
    return { result: last.output || "null", jobId };
  }

  close(): void {
    this.client.close();
  }
}
