// The plugin contract: what a module in PLUGINS_RUNNER_DIR default-exports to become a PLUGIN runner.
//
// jobworkerp-rs loads native shared libraries (.so/.dylib) as plugins; a TypeScript server cannot, so
// jobworkerp-ts loads JavaScript / TypeScript ES modules instead (*.js, *.mjs, *.ts, *.mts). This file has no
// imports on purpose: a third-party plugin can copy it or `import type` it without pulling in the server.
//
// Everything crosses the boundary as bytes: settings, args and results are protobuf-encoded messages of the
// types the plugin declares in its .proto texts (self-contained, no imports), which RunnerService serves to
// clients verbatim (`runner_settings_proto`, `method_proto_map`). Encode and decode with any library.
// The first top-level message of each text is the one it describes.
//
// Each plugin instance runs in its own worker thread: a run that throws fails its job, a run that ignores
// its job's timeout or cancellation is stopped by terminating the thread, and a thread that dies
// (process.exit, uncaught error) fails only its in-flight job.
//
// Example (plugins/hello/hello.ts):
//   export default {
//     name: "HelloPlugin", description: "Greets", settingsProto: "...",
//     methods: { run: { argsProto: "...", resultProto: "...", outputType: "BOTH" } },
//     async create(settings) { return { async run(args, ctx) { ... }, async *runStream(args, ctx) { ... } }; },
//   } satisfies Plugin;

/** How a method returns: one result, a stream of result messages, or either (the client chooses). */
export type PluginOutputType = "NON_STREAMING" | "STREAMING" | "BOTH";

/** jobworkerp's failure statuses. ERROR_AND_RETRY is retried per the worker's retry policy; the others are not. */
export type PluginErrorKind = "ERROR_AND_RETRY" | "FATAL_ERROR" | "OTHER_ERROR";

export interface PluginMethod {
  /** .proto source text of the args message. */
  argsProto: string;
  /** .proto source text of the result message (each streamed chunk is one whole result message too). */
  resultProto: string;
  description?: string;
  outputType: PluginOutputType;
}

export interface PluginRunContext {
  /** Aborted on the job's timeout or cancellation: stop promptly (the thread is terminated if the run goes on). */
  signal: AbortSignal;
  /** The method being run (a key of `methods`; single-method plugins get their only one). */
  using: string;
  /** The job id, as a decimal string. */
  jobId: string;
  /** Job metadata (request headers that are not jobworkerp's own). */
  metadata: Record<string, string>;
}

export interface PluginInstance {
  /** Run once: args bytes in, encoded result message out. */
  run(args: Uint8Array, ctx: PluginRunContext): Promise<Uint8Array>;
  /** Streaming run: yield encoded result messages. Needed when a method's outputType is STREAMING or BOTH. */
  runStream?(args: Uint8Array, ctx: PluginRunContext): AsyncIterable<Uint8Array>;
  /** Release resources (called when a per-job instance is done or a static pool drops it). */
  close?(): Promise<void>;
}

export interface Plugin {
  /** The runner's name, unique among runners (the runner row is found again by it across restarts). */
  name: string;
  description: string;
  /** .proto source text of the settings message ("" when the plugin takes no settings). */
  settingsProto: string;
  /** Method name → description; a single-method plugin should call its method "run". */
  methods: Record<string, PluginMethod>;
  /**
   * Build an instance from a worker's encoded settings (once per job, or once per static pool slot).
   * Throw to refuse bad settings: the job fails with FATAL_ERROR unless the error says otherwise.
   */
  create(settings: Uint8Array): Promise<PluginInstance>;
}

/**
 * To choose the status of a failed job, throw an error with a `kind` property, e.g.
 * `throw Object.assign(new Error("upstream down"), { kind: "ERROR_AND_RETRY" })`.
 * Any other thrown value fails the job with OTHER_ERROR and its message.
 */
export interface PluginError extends Error {
  kind?: PluginErrorKind;
}
