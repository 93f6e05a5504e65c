// gRPC-Web wire format: length-prefixed frames (1 flag byte + 4-byte big-endian length), a final trailer
// frame (flag 0x80) holding HTTP/1-style header lines, and the -text variant that base64-encodes the body.

export const DATA_FLAG = 0x00;
export const COMPRESSED_FLAG = 0x01;
export const TRAILER_FLAG = 0x80;
export const FRAME_HEADER_BYTES = 5;

export interface Frame {
  flag: number;
  payload: Uint8Array;
}

export function encodeFrame(flag: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out[0] = flag;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** A trailer frame: `key: value\r\n` lines, keys lower-case as HTTP/2 trailers would be. */
export function encodeTrailerFrame(trailers: Record<string, string>): Buffer {
  const text = Object.entries(trailers)
    .map(([k, v]) => `${k.toLowerCase()}: ${v}\r\n`)
    .join("");
  return encodeFrame(TRAILER_FLAG, Buffer.from(text, "latin1"));
}

export class FramingError extends Error {}

/** Splits a request body into frames; a truncated frame is an error (the body is complete when this runs). */
export function decodeFrames(body: Uint8Array): Frame[] {
  const frames: Frame[] = [];
  const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  while (at < view.length) {
    if (view.length - at < FRAME_HEADER_BYTES) throw new FramingError(`truncated frame header (${view.length - at} of 5 bytes)`);
    const flag = view[at];
    const len = view.readUInt32BE(at + 1);
    const start = at + FRAME_HEADER_BYTES;
    if (view.length - start < len) throw new FramingError(`truncated frame: ${len} bytes announced, ${view.length - start} present`);
    frames.push({ flag, payload: view.subarray(start, start + len) });
    at = start + len;
  }
  return frames;
}

/**
 * Decodes a grpc-web-text body. Clients may send several base64 chunks one after the other, each with its own
 * padding, so the text is decoded piece by piece at padding boundaries rather than as one string.
 */
export function decodeBase64Body(text: string): Buffer {
  const compact = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/=]*$/.test(compact)) throw new FramingError("grpc-web-text body is not base64");
  const pieces = compact.match(/[^=]+={0,2}|=+/g) ?? [];
  return Buffer.concat(pieces.map((p) => {
    if (/^=+$/.test(p) || (p.replace(/=+$/, "").length % 4 === 1)) throw new FramingError("grpc-web-text body is not valid base64");
    return Buffer.from(p, "base64");
  }));
}

/** gRPC's grpc-message encoding: printable ASCII except '%' as is, every other UTF-8 byte as %XX. */
export function percentEncode(message: string): string {
  let out = "";
  for (const b of Buffer.from(message, "utf8")) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** The grpc-timeout header (e.g. "1500m", "3S") in milliseconds; undefined when absent, null when malformed. */
export function parseGrpcTimeout(raw: string | undefined): number | undefined | null {
  if (raw === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(raw.trim());
  if (!m) return null;
  return Number(m[1]) * TIMEOUT_UNIT_MS[m[2]];
}
