// CORS for the gRPC-Web front: browsers call it from the admin UI's origin, send custom headers
// (jobworkerp-auth, x-grpc-web, grpc-timeout) and must be allowed to read grpc-status and the -bin headers.
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";

/** Headers a gRPC-Web client reads; response-specific ones (e.g. x-job-id-bin) are added per response. */
const ALWAYS_EXPOSED = ["grpc-status", "grpc-message", "grpc-status-details-bin", "x-job-id-bin", "x-job-result-bin"];
const PREFLIGHT_MAX_AGE_SEC = 86_400;

export class CorsPolicy {
  private readonly any: boolean;
  private readonly origins: Set<string>;

  /** `allowedOrigins`: exact origins (scheme://host[:port]), or `*` for any. */
  constructor(allowedOrigins: readonly string[]) {
    this.any = allowedOrigins.includes("*");
    this.origins = new Set(allowedOrigins.map((o) => o.replace(/\/+$/, "")));
  }

  /** Whether a request may proceed: no Origin (not a browser, or same-origin navigation) or an allowed one. */
  allows(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    return origin === undefined || this.any || this.origins.has(origin);
  }

  /** Headers for an actual (non-preflight) response; `extraExposed`: the names this response carries. */
  responseHeaders(req: IncomingMessage, extraExposed: Iterable<string> = []): OutgoingHttpHeaders {
    const origin = req.headers.origin;
    if (origin === undefined) return {};
    const exposed = new Set([...ALWAYS_EXPOSED, ...extraExposed]);
    return { ...this.originHeaders(origin), "access-control-expose-headers": [...exposed].join(", ") };
  }

  /** Headers answering a preflight OPTIONS: POST with whatever headers the browser asked for. */
  preflightHeaders(req: IncomingMessage): OutgoingHttpHeaders {
    const origin = req.headers.origin ?? "*";
    const asked = req.headers["access-control-request-headers"];
    return {
      ...this.originHeaders(origin),
      "access-control-allow-methods": "POST, OPTIONS",
      "access-control-allow-headers": asked || "content-type, x-grpc-web, x-user-agent, grpc-timeout, jobworkerp-auth",
      "access-control-max-age": String(PREFLIGHT_MAX_AGE_SEC),
    };
  }

  private originHeaders(origin: string): OutgoingHttpHeaders {
    // a list of origins answers with the caller's own origin, so caches must key on it
    return this.any ? { "access-control-allow-origin": "*" } : { "access-control-allow-origin": origin, vary: "Origin" };
  }
}
