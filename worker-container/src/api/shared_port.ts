// One TCP port for two protocols, as tonic-web does for jobworkerp-rs: a connection that opens with the HTTP/2
// connection preface (gRPC clients speak HTTP/2 with prior knowledge) goes to grpc-js, any other to the
// HTTP/1.1 server that answers gRPC-Web. The bytes read to decide are put back before the socket is handed on.
import net from "node:net";

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** A connection that sends nothing recognisable for this long is dropped (it holds a socket for nothing). */
const SNIFF_TIMEOUT_MS = 30_000;

export interface ProtocolRoutes {
  http2(socket: net.Socket): void;
  http1(socket: net.Socket): void;
}

export interface SharedPort {
  port: number;
  /** Stop accepting connections (open ones are left to the servers they were handed to). */
  close(): void;
}

/** Splits `host:port` / `[v6]:port` (GRPC_ADDR's form). */
export function parseHostPort(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`address must be host:port, got '${addr}'`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

function route(socket: net.Socket, routes: ProtocolRoutes): void {
  let seen: Buffer = Buffer.alloc(0);
  const decide = (to: "http1" | "http2") => {
    socket.removeListener("data", onData);
    socket.removeListener("error", onError);
    socket.setTimeout(0);
    socket.removeListener("timeout", onTimeout);
    socket.pause();
    socket.unshift(seen);
    routes[to](socket);
    // Node's HTTP/1 parser reads the socket's handle directly once given the socket; the bytes put back are
    // in the JS stream's buffer and reach it only as 'data' events, which need the stream flowing again
    if (to === "http1") socket.resume();
  };
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, H2_PREFACE.length);
    if (!seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) decide("http1");
    else if (seen.length >= H2_PREFACE.length) decide("http2");
  };
  const onError = () => socket.destroy();
  const onTimeout = () => socket.destroy();
  socket.on("data", onData);
  socket.on("error", onError);
  socket.setTimeout(SNIFF_TIMEOUT_MS, onTimeout);
}

export async function listenSharedPort(addr: string, routes: ProtocolRoutes): Promise<SharedPort> {
  const { host, port } = parseHostPort(addr);
  const server = net.createServer({ noDelay: true }, (socket) => route(socket, routes));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.removeListener("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    // close()'s callback would wait for every handed-on connection; their servers close them
    close: () => void server.close(),
  };
}
