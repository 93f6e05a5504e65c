// A grpc.health.v1 client without a schema (the messages are one field each): used by the container's
// health probe (cli/healthcheck.ts), which must start fast and load nothing else.
import * as grpc from "@grpc/grpc-js";

export const SERVING = 1; // grpc.health.v1.HealthCheckResponse.ServingStatus

/** HealthCheckResponse is `{ status = 1 (enum) }`: read field 1 from the wire bytes (UNKNOWN = 0 when absent). */
export function decodeHealthStatus(buf: Uint8Array): number {
  let i = 0;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; i < buf.length; shift += 7) {
      const b = buf[i++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    throw new Error("truncated health response");
  };
  let status = 0;
  while (i < buf.length) {
    const key = varint();
    const wire = key & 7;
    if (key >>> 3 === 1 && wire === 0) status = varint();
    else if (wire === 0) varint();
    else if (wire === 2) {
      const length = varint(); // read before advancing: `i += varint()` would add to the old i
      i += length;
    }
    else throw new Error(`unexpected wire type ${wire} in health response`);
  }
  return status;
}

/** HealthCheckRequest `{ service = 1 }`; the empty name asks about the server as a whole. */
function encodeRequest(service: string): Buffer {
  const name = Buffer.from(service);
  if (name.length === 0) return Buffer.alloc(0);
  if (name.length > 127) throw new Error("service name too long for the health probe");
  return Buffer.concat([Buffer.from([0x0a, name.length]), name]);
}

/** Health/Check on `addr` (host:port, plaintext HTTP/2): the serving status, or a rejection (unreachable, deadline). */
export function checkHealth(addr: string, service = "", deadlineMs = 3_000): Promise<number> {
  const client = new grpc.Client(addr, grpc.credentials.createInsecure());
  return new Promise<number>((resolve, reject) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (b: Buffer) => b,
      (b: Buffer) => decodeHealthStatus(b),
      encodeRequest(service),
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err, status) => (err ? reject(err) : resolve(status ?? 0)),
    );
  }).finally(() => client.close());
}
