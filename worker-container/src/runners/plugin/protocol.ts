// Messages between the worker process (host) and a plugin's worker thread. One plugin instance per thread at a
// time; requests carry an id so replies, stream chunks and aborts find their run.
import type { PluginErrorKind, PluginOutputType } from "./contract.js";

/** What the host learns about a plugin: everything but its functions (which cannot cross threads). */
export interface PluginMeta {
  name: string;
  description: string;
  settingsProto: string;
  methods: Record<string, { argsProto: string; resultProto: string; description?: string; outputType: PluginOutputType }>;
}

export interface WireContext {
  using: string;
  jobId: string;
  metadata: Record<string, string>;
}

export type HostMessage =
  | { op: "create"; id: number; settings: Uint8Array }
  | { op: "run"; id: number; args: Uint8Array; ctx: WireContext }
  | { op: "stream"; id: number; args: Uint8Array; ctx: WireContext }
  /** The host consumed `n` more chunks of stream `id` (flow control). */
  | { op: "ack"; id: number; n: number }
  | { op: "abort"; id: number }
  | { op: "close"; id: number };

export interface WireError {
  message: string;
  kind?: PluginErrorKind;
}

export type ThreadMessage =
  | { type: "loaded"; meta: PluginMeta }
  | { type: "loadError"; error: WireError }
  | { type: "ok"; id: number; result?: Uint8Array }
  | { type: "chunk"; id: number; chunk: Uint8Array }
  | { type: "error"; id: number; error: WireError };

/** Chunks a thread may send ahead of the host's acks. */
export const STREAM_WINDOW = 16;

/** A host message before the thread host gives it a request id. */
export type HostRequest = HostMessage extends infer M ? (M extends HostMessage ? Omit<M, "id"> : never) : never;
