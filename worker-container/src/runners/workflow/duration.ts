// Durations: {days, hours, minutes, seconds, milliseconds} or an ISO 8601 duration (P1DT2H, PT0.5S).
const ISO_RE = /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** Milliseconds of a duration, or undefined when it is not one. */
export function durationMs(d: unknown): number | undefined {
  if (typeof d === "string") {
    const m = ISO_RE.exec(d.trim());
    if (!m || d.trim() === "P" || d.trim().endsWith("T")) return undefined;
    const [w, days, h, min, s] = m.slice(1).map((x) => (x ? Number(x) : 0));
    return ((((w * 7 + days) * 24 + h) * 60 + min) * 60 + s) * 1000;
  }
  if (d && typeof d === "object" && !Array.isArray(d)) {
    const o = d as Record<string, unknown>;
    const n = (k: string) => (typeof o[k] === "number" ? (o[k] as number) : 0);
    return (((n("days") * 24 + n("hours")) * 60 + n("minutes")) * 60 + n("seconds")) * 1000 + n("milliseconds");
  }
  return undefined;
}

/** Sleeps, or rejects with the signal's reason when aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
