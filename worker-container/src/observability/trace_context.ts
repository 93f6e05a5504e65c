// W3C Trace Context (https://www.w3.org/TR/trace-context/) carried in a job's metadata map: the front writes
// `traceparent`/`tracestate`, the worker that runs the job (maybe another process) reads them back.
// Written here rather than through a global propagator so the core needs only @opentelemetry/api.
import { ROOT_CONTEXT, createTraceState, trace, type Context, type SpanContext } from "@opentelemetry/api";

export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";

const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/** The span context in a `traceparent` value (version 00, or a later one read as 00), or undefined. */
export function parseTraceparent(value: string | undefined, tracestate?: string): SpanContext | undefined {
  if (!value) return undefined;
  const m = TRACEPARENT_RE.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags] = m;
  // version ff is forbidden; version 00 has exactly four fields
  if (version === "ff" || (version === "00" && value.trim().length !== 55)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return {
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16) & 1,
    isRemote: true,
    traceState: tracestate ? createTraceState(tracestate) : undefined,
  };
}

export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
}

/** The remote parent carried by a job's metadata (or a request's headers): a context to start spans under. */
export function extractContext(metadata: Record<string, string> | undefined): Context {
  const sc = parseTraceparent(metadata?.[TRACEPARENT], metadata?.[TRACESTATE]);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}

/** A copy of `metadata` that carries `sc` as the parent of whatever the job does next. */
export function injectContext(metadata: Record<string, string>, sc: SpanContext): Record<string, string> {
  const out: Record<string, string> = { ...metadata, [TRACEPARENT]: formatTraceparent(sc) };
  const ts = sc.traceState?.serialize();
  if (ts) out[TRACESTATE] = ts;
  else delete out[TRACESTATE];
  return out;
}

/** The trace id a job belongs to (for log lines), whether or not tracing is enabled in this process. */
export function traceIdOf(metadata: Record<string, string> | undefined): string | undefined {
  return parseTraceparent(metadata?.[TRACEPARENT])?.traceId;
}
