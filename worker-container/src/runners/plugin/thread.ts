// Runs inside a plugin's worker thread (started by thread_entry.mjs): imports the plugin module, reports its
// metadata, then serves the host's create / run / stream / abort / close requests for one instance at a time.
// Errors thrown by the plugin travel back as messages; anything that escapes (uncaught errors, process.exit)
// ends only this thread, and the host fails the in-flight job.
import { parentPort, workerData } from "node:worker_threads";
import { pathToFileURL } from "node:url";
import type { Plugin, PluginErrorKind, PluginInstance } from "./contract.js";
import { STREAM_WINDOW, type HostMessage, type PluginMeta, type ThreadMessage, type WireError } from "./protocol.js";

const port = parentPort!;
const send = (m: ThreadMessage) => port.postMessage(m);
const KINDS: PluginErrorKind[] = ["ERROR_AND_RETRY", "FATAL_ERROR", "OTHER_ERROR"];

function wireError(e: unknown): WireError {
  const kind = (e as { kind?: unknown } | null)?.kind;
  const message = e instanceof Error ? e.message : String(e);
  return { message: message || "plugin error", kind: KINDS.includes(kind as PluginErrorKind) ? (kind as PluginErrorKind) : undefined };
}

function describe(p: Plugin): PluginMeta {
  if (!p || typeof p !== "object") throw new Error("the module has no default export (expected a plugin object)");
  if (typeof p.name !== "string" || p.name.trim() === "") throw new Error("plugin.name must be a non-empty string");
  if (typeof p.create !== "function") throw new Error(`plugin ${p.name}: create(settings) must be a function`);
  if (!p.methods || typeof p.methods !== "object" || Object.keys(p.methods).length === 0) {
    throw new Error(`plugin ${p.name}: methods must name at least one method`);
  }
  const methods: PluginMeta["methods"] = {};
  for (const [name, m] of Object.entries(p.methods)) {
    methods[name] = { argsProto: m?.argsProto, resultProto: m?.resultProto, description: m?.description, outputType: m?.outputType };
  }
  return { name: p.name, description: String(p.description ?? ""), settingsProto: String(p.settingsProto ?? ""), methods };
}

const asBytes = (v: unknown, what: string): Uint8Array => {
  if (v instanceof Uint8Array) return v;
  throw new Error(`${what} must be a Uint8Array (an encoded result message), got ${v === null ? "null" : typeof v}`);
};

let plugin: Plugin;
let instance: PluginInstance | undefined;
const aborts = new Map<number, AbortController>();
const credits = new Map<number, { acked: number; wake?: () => void }>();

async function handle(m: HostMessage): Promise<void> {
  switch (m.op) {
    case "create":
      instance = await plugin.create(m.settings);
      if (!instance || typeof instance.run !== "function") throw new Error(`plugin ${plugin.name}: create() must resolve to an object with run()`);
      return send({ type: "ok", id: m.id });
    case "run": {
      const ac = new AbortController();
      aborts.set(m.id, ac);
      try {
        const result = await instance!.run(m.args, { ...m.ctx, signal: ac.signal });
        return send({ type: "ok", id: m.id, result: asBytes(result, "run()'s result") });
      } finally {
        aborts.delete(m.id);
      }
    }
    case "stream": {
      if (typeof instance!.runStream !== "function") throw new Error(`plugin ${plugin.name} has no runStream()`);
      const ac = new AbortController();
      aborts.set(m.id, ac);
      const credit: { acked: number; wake?: () => void } = { acked: 0 };
      credits.set(m.id, credit);
      let sent = 0;
      try {
        for await (const chunk of instance!.runStream(m.args, { ...m.ctx, signal: ac.signal })) {
          if (ac.signal.aborted) break;
          send({ type: "chunk", id: m.id, chunk: asBytes(chunk, "a streamed chunk") });
          sent++;
          while (sent - credit.acked >= STREAM_WINDOW && !ac.signal.aborted) await new Promise<void>((r) => (credit.wake = r));
        }
        return send({ type: "ok", id: m.id });
      } finally {
        aborts.delete(m.id);
        credits.delete(m.id);
      }
    }
    case "ack": {
      const c = credits.get(m.id);
      if (c) {
        c.acked += m.n;
        c.wake?.();
      }
      return;
    }
    case "abort": {
      aborts.get(m.id)?.abort(new Error("aborted by the job's timeout or cancellation"));
      const c = credits.get(m.id);
      c?.wake?.();
      return;
    }
    case "close": {
      const i = instance;
      instance = undefined;
      await i?.close?.();
      return send({ type: "ok", id: m.id });
    }
  }
}

try {
  const mod = (await import(pathToFileURL(workerData.path as string).href)) as { default?: Plugin };
  plugin = mod.default as Plugin;
  send({ type: "loaded", meta: describe(plugin) });
  // create and close run one after the other in arrival order: the host hands a closing thread to the next
  // instance at once, and that instance's create must wait for the previous close.
  let lifecycle: Promise<unknown> = Promise.resolve();
  port.on("message", (m: HostMessage) => {
    const done = m.op === "create" || m.op === "close" ? (lifecycle = lifecycle.then(() => handle(m))) : handle(m);
    done.catch((e: unknown) => send({ type: "error", id: m.id, error: wireError(e) }));
  });
} catch (e) {
  send({ type: "loadError", error: wireError(e) });
}
