// A real grpc-js test server for the GRPC runner: a small Greeter service defined from a .proto text, with
// server reflection (@grpc/reflection). Requests/replies are encoded here with protobufjs from the same text,
// independently of the runner's code.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import protobuf from "protobufjs";

export const GREETER_PROTO = `syntax = "proto3";
package test.greeter.v1;

message HelloRequest {
  string name = 1;
  optional int32 times = 2;
  map<string, string> tags = 3;
}
message HelloReply {
  string message = 1;
  int32 index = 2;
}

service Greeter {
  rpc SayHello(HelloRequest) returns (HelloReply);
  // "times" replies (3 by default); name "boom" fails with ABORTED after two.
  rpc SayHellos(HelloRequest) returns (stream HelloReply);
  // Replies after 5 s unless cancelled.
  rpc Slow(HelloRequest) returns (HelloReply);
  // Always NOT_FOUND.
  rpc Fail(HelloRequest) returns (HelloReply);
}
`;

const root = protobuf.parse(GREETER_PROTO, { keepCase: true }).root;
const HelloRequest = root.lookupType("test.greeter.v1.HelloRequest");
const HelloReply = root.lookupType("test.greeter.v1.HelloReply");

export interface HelloRequestObj {
  name?: string;
  times?: number;
  tags?: Record<string, string>;
}
export interface HelloReplyObj {
  message: string;
  index: number;
}

export const encodeHelloRequest = (o: HelloRequestObj) => HelloRequest.encode(HelloRequest.fromObject(o)).finish();
export const decodeHelloReply = (b: Uint8Array) => HelloReply.toObject(HelloReply.decode(b), { defaults: true }) as HelloReplyObj;

export interface Greeter {
  port: number;
  /** Request metadata of the last call (first value of each key). */
  lastMetadata(): Record<string, string>;
  stop(): Promise<void>;
}

export interface GreeterTls {
  key: Buffer;
  cert: Buffer;
  /** When set, clients must present a certificate signed by this CA. */
  clientCa?: Buffer;
}

export async function startGreeter(opts: { reflection?: boolean; tls?: GreeterTls } = {}): Promise<Greeter> {
  const dir = mkdtempSync(join(tmpdir(), "greeter-"));
  writeFileSync(join(dir, "greeter.proto"), GREETER_PROTO);
  const def = protoLoader.loadSync("greeter.proto", { includeDirs: [dir], keepCase: true, defaults: true });
  rmSync(dir, { recursive: true, force: true });
  const service = (def["test.greeter.v1.Greeter"] as grpc.ServiceDefinition);

  let last: Record<string, string> = {};
  const remember = (md: grpc.Metadata) => {
    last = Object.fromEntries(Object.entries(md.getMap()).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString("base64") : String(v)]));
  };
  const pending = new Set<() => void>();

  const server = new grpc.Server();
  server.addService(service, {
    SayHello(call: grpc.ServerUnaryCall<HelloRequestObj, HelloReplyObj>, cb: grpc.sendUnaryData<HelloReplyObj>) {
      remember(call.metadata);
      const header = new grpc.Metadata();
      header.set("x-echo", String(call.metadata.get("x-token")[0] ?? ""));
      header.set("x-auth", String(call.metadata.get("authorization")[0] ?? ""));
      call.sendMetadata(header);
      const trailer = new grpc.Metadata();
      trailer.set("x-trailer", "bye");
      const tags = Object.entries(call.request.tags ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
      cb(null, { message: `hello ${call.request.name}${tags ? ` [${tags}]` : ""}`, index: call.request.times ?? 0 }, trailer);
    },
    SayHellos(call: grpc.ServerWritableStream<HelloRequestObj, HelloReplyObj>) {
      remember(call.metadata);
      const n = call.request.times ?? 3;
      let i = 0;
      const next = () => {
        if (call.cancelled) return;
        if (call.request.name === "boom" && i === 2) {
          call.emit("error", { code: grpc.status.ABORTED, details: "boom after 2" });
          return;
        }
        if (i >= n) {
          const trailer = new grpc.Metadata();
          trailer.set("x-count", String(n));
          call.end(trailer);
          return;
        }
        call.write({ message: `hello ${call.request.name} #${i}`, index: i });
        i++;
        setTimeout(next, 5);
      };
      next();
    },
    Slow(call: grpc.ServerUnaryCall<HelloRequestObj, HelloReplyObj>, cb: grpc.sendUnaryData<HelloReplyObj>) {
      remember(call.metadata);
      const done = () => {
        clearTimeout(t);
        pending.delete(done);
      };
      const t = setTimeout(() => {
        done();
        cb(null, { message: "finally", index: 0 });
      }, 5000);
      pending.add(done);
      call.on("cancelled", done);
    },
    Fail(call: grpc.ServerUnaryCall<HelloRequestObj, HelloReplyObj>, cb: grpc.sendUnaryData<HelloReplyObj>) {
      remember(call.metadata);
      cb({ code: grpc.status.NOT_FOUND, details: "no such greeting" });
    },
  });
  if (opts.reflection !== false) new ReflectionService(def).addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      opts.tls
        ? grpc.ServerCredentials.createSsl(opts.tls.clientCa ?? null, [{ private_key: opts.tls.key, cert_chain: opts.tls.cert }], !!opts.tls.clientCa)
        : grpc.ServerCredentials.createInsecure(),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  return {
    port,
    lastMetadata: () => last,
    stop: async () => {
      for (const f of pending) f();
      server.forceShutdown();
    },
  };
}

/** A port that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import("node:net");
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A throwaway CA with a server certificate for `serverName` and a client certificate, as PEM files in `dir`. */
export function makeTestPki(dir: string, serverName: string) {
  const ossl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ossl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=greeter-test-ca");
  writeFileSync(join(dir, "server.ext"), `subjectAltName=DNS:${serverName}\n`);
  for (const who of ["server", "client"]) {
    ossl("req", ...ec, "-keyout", `${who}.key`, "-out", `${who}.csr`, "-subj", `/CN=${who === "server" ? serverName : "greeter-client"}`);
    const ext = who === "server" ? ["-extfile", "server.ext"] : [];
    ossl("x509", "-req", "-in", `${who}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${who}.pem`, "-days", "1", ...ext);
  }
  const file = (n: string) => join(dir, n);
  return { ca: file("ca.pem"), serverKey: file("server.key"), serverCert: file("server.pem"), clientKey: file("client.key"), clientCert: file("client.pem") };
}
