// One gRPC channel to the server shared by every service client, with the auth header and deadline on each call.
import type { DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import { serviceClientConstructor } from "../../api/client.js";
import { CliError, UsageError } from "./errors.js";

export const AUTH_HEADER = "jobworkerp-auth";
const CONNECT_TIMEOUT_MS = 10_000;

export interface Target {
  /** host:port as grpc-js dials it. */
  hostPort: string;
  tls: boolean;
}

/** Accepts `http://host:port`, `https://host:port` (TLS) or a bare `host:port` (default port 9000 for http, 443 for https). */
export function parseAddress(raw: string): Target {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`invalid address '${raw}' (expected http://host:port or host:port)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`invalid address '${raw}': scheme must be http or https`);
  if (!url.hostname || (url.pathname !== "/" && url.pathname !== "")) throw new UsageError(`invalid address '${raw}' (expected http://host:port or host:port)`);
  const tls = url.protocol === "https:";
  const port = url.port || (tls ? "443" : /^https?:\/\//i.test(raw) ? "80" : "9000");
  return { hostPort: `${url.hostname}:${port}`, tls };
}

type Methods<S> = S extends GenService<infer T extends GenServiceMethods> ? T : never;
type In<S, K extends keyof Methods<S>> = MessageInitShape<Methods<S>[K]["input"]>;
type Out<S, K extends keyof Methods<S>> = MessageShape<Methods<S>[K]["output"]>;

export interface CallOpts {
  /** Overrides the connection's request timeout (ms; 0 = none). */
  timeoutMs?: number;
  /** Called with the response headers (e.g. x-job-id-bin of streaming enqueues). */
  onHeaders?: (md: grpc.Metadata) => void;
}

export class Connection {
  private readonly channel: grpc.Channel;
  private readonly clients = new Map<string, grpc.Client>();
  private ready: Promise<void> | undefined;

  constructor(
    readonly address: string,
    private readonly opts: { authToken?: string; requestTimeoutMs?: number } = {},
  ) {
    const target = parseAddress(address);
    const creds = target.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
    this.channel = new grpc.Channel(target.hostPort, creds, { "grpc.max_receive_message_length": 64 * 1024 * 1024 });
  }

  private client(service: DescService): grpc.Client {
    let c = this.clients.get(service.typeName);
    if (!c) {
      const Ctor = serviceClientConstructor(service);
      c = new Ctor("unused", grpc.credentials.createInsecure(), { channelOverride: this.channel });
      this.clients.set(service.typeName, c);
    }
    return c;
  }

  /**
   * Resolves once the channel is connected. A refused connection fails at once (TRANSIENT_FAILURE) rather
   * than after grpc-js's reconnect back-off; an address that never answers fails after CONNECT_TIMEOUT_MS.
   */
  private connect(): Promise<void> {
    this.ready ??= new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + CONNECT_TIMEOUT_MS;
      const fail = (why: string) => reject(new CliError(`UNAVAILABLE: cannot connect to ${this.address} (${why})`));
      const check = () => {
        const state = this.channel.getConnectivityState(true);
        if (state === grpc.connectivityState.READY) return resolve();
        if (state === grpc.connectivityState.TRANSIENT_FAILURE) return fail("connection failed");
        if (state === grpc.connectivityState.SHUTDOWN) return fail("channel closed");
        this.channel.watchConnectivityState(state, deadline, (err) => (err ? fail(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`) : check()));
      };
      check();
    });
    return this.ready;
  }

  private callOptions(opts: CallOpts): [grpc.Metadata, grpc.CallOptions] {
    const md = new grpc.Metadata();
    if (this.opts.authToken) md.set(AUTH_HEADER, this.opts.authToken);
    const timeout = opts.timeoutMs ?? this.opts.requestTimeoutMs ?? 0;
    return [md, timeout > 0 ? { deadline: Date.now() + timeout } : {}];
  }

  async unary<S extends DescService, K extends keyof Methods<S> & string>(service: S, method: K, req: In<S, K>, opts: CallOpts = {}): Promise<Out<S, K>> {
    const client = this.client(service);
    await this.connect();
    const [md, callOpts] = this.callOptions(opts);
    return new Promise((resolve, reject) => {
      const call = (client as unknown as Record<string, Function>)[method](req, md, callOpts, (err: grpc.ServiceError | null, res: Out<S, K>) =>
        err ? reject(err) : resolve(res),
      ) as grpc.ClientUnaryCall;
      if (opts.onHeaders) call.on("metadata", opts.onHeaders);
    });
  }

  /** A server stream as an async iterable; breaking out of the loop cancels the call. */
  async *stream<S extends DescService, K extends keyof Methods<S> & string>(service: S, method: K, req: In<S, K>, opts: CallOpts = {}): AsyncGenerator<Out<S, K>> {
    const client = this.client(service);
    await this.connect();
    const [md, callOpts] = this.callOptions(opts);
    const call = (client as unknown as Record<string, Function>)[method](req, md, callOpts) as grpc.ClientReadableStream<Out<S, K>>;
    if (opts.onHeaders) call.on("metadata", opts.onHeaders);
    try {
      for await (const msg of call) yield msg;
    } finally {
      call.cancel();
    }
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.channel.close();
  }
}
