// gRPC-Web pieces that the e2e test (test/e2e/grpc_web.test.ts) cannot reach cheaply: origin lists,
// configuration errors, and the framing helpers' edge cases.
import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { CorsPolicy } from "../../worker-container/src/api/grpc_web_cors.js";
import { FramingError, decodeBase64Body, decodeFrames, encodeFrame, encodeTrailerFrame, parseGrpcTimeout, percentEncode } from "../../worker-container/src/api/grpc_web_framing.js";
import { parseHostPort } from "../../worker-container/src/api/shared_port.js";
import { ConfigError, loadConfig } from "../../worker-container/src/cli/config.js";

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe("CORS policy", () => {
  it("a list of origins answers with the caller's origin and Vary, and refuses others", () => {
    const cors = new CorsPolicy(["https://admin.example", "http://localhost:8080"]);
    expect(cors.allows(req({ origin: "https://admin.example" }))).toBe(true);
    expect(cors.allows(req({ origin: "https://evil.example" }))).toBe(false);
    expect(cors.allows(req({}))).toBe(true); // not a browser
    expect(cors.responseHeaders(req({ origin: "http://localhost:8080" }), ["x-job-id-bin"])).toMatchObject({
      "access-control-allow-origin": "http://localhost:8080",
      vary: "Origin",
    });
    expect(cors.responseHeaders(req({}))).toEqual({});
  });

  it("`*` allows every origin", () => {
    const cors = new CorsPolicy(["*"]);
    expect(cors.allows(req({ origin: "https://anything.example" }))).toBe(true);
    expect(cors.preflightHeaders(req({ origin: "https://a.example" }))["access-control-allow-origin"]).toBe("*");
  });
});

describe("configuration", () => {
  it("USE_GRPC_WEB enables gRPC-Web with origins from GRPC_WEB_ALLOWED_ORIGINS (default *)", () => {
    expect(loadConfig("all-in-one", {}).grpcWeb).toBeUndefined();
    expect(loadConfig("all-in-one", { USE_GRPC_WEB: "true" }).grpcWeb).toEqual({ allowedOrigins: ["*"] });
    expect(loadConfig("front", { USE_GRPC_WEB: "TRUE", GRPC_WEB_ALLOWED_ORIGINS: "https://a.example, http://b.example:8080" }).grpcWeb).toEqual({
      allowedOrigins: ["https://a.example", "http://b.example:8080"],
    });
  });

  it("an origin with a path or no scheme is a configuration error", () => {
    for (const bad of ["admin.example", "https://a.example/ui", "ftp//x"]) {
      expect(() => loadConfig("all-in-one", { USE_GRPC_WEB: "true", GRPC_WEB_ALLOWED_ORIGINS: bad })).toThrow(ConfigError);
    }
  });
});

describe("framing", () => {
  it("frames round-trip; truncated ones are FramingErrors", () => {
    const body = Buffer.concat([encodeFrame(0, Buffer.from("ab")), encodeFrame(0x80, Buffer.alloc(0))]);
    expect(decodeFrames(body).map((f) => [f.flag, Buffer.from(f.payload).toString()])).toEqual([[0, "ab"], [0x80, ""]]);
    expect(() => decodeFrames(body.subarray(0, 3))).toThrow(FramingError);
    expect(() => decodeFrames(body.subarray(0, 6))).toThrow(FramingError);
  });

  it("base64 bodies may be several padded chunks; garbage is a FramingError", () => {
    const chunks = Buffer.from("a").toString("base64") + Buffer.from("bc").toString("base64") + Buffer.from("def").toString("base64");
    expect(decodeBase64Body(chunks).toString()).toBe("abcdef");
    expect(() => decodeBase64Body("ab*c")).toThrow(FramingError);
    expect(() => decodeBase64Body("=")).toThrow(FramingError);
  });

  it("trailers, grpc-message encoding, grpc-timeout, addresses", () => {
    expect(encodeTrailerFrame({ "Grpc-Status": "0" }).subarray(5).toString()).toBe("grpc-status: 0\r\n");
    expect(percentEncode("50% über\n")).toBe("50%25 %C3%BCber%0A");
    expect([parseGrpcTimeout("2S"), parseGrpcTimeout("150m"), parseGrpcTimeout(undefined), parseGrpcTimeout("1x")]).toEqual([2000, 150, undefined, null]);
    expect(parseHostPort("0.0.0.0:9000")).toEqual({ host: "0.0.0.0", port: 9000 });
    expect(parseHostPort("[::1]:9000")).toEqual({ host: "::1", port: 9000 });
    expect(() => parseHostPort("9000")).toThrow();
  });
});
