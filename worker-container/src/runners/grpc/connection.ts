// The worker's target: settings validated into a grpc-js client (channel, credentials, message limits) plus the
// per-call defaults (method, metadata, timeout, as_json, schema source).
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { GrpcRunnerSettingsSchema, type GrpcRunnerSettings } from "../../gen/jobworkerp/runner/grpc/runner_pb.js";
import { RunnerError } from "../runner.js";

export interface Target {
  /** host:port as dialled. */
  address: string;
  settings: GrpcRunnerSettings;
}

export function decodeSettings(bytes: Uint8Array): Target {
  let s: GrpcRunnerSettings;
  try {
    s = fromBinary(GrpcRunnerSettingsSchema, bytes);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid GrpcRunnerSettings: ${(e as Error).message}`);
  }
  // Like jobworkerp-rs, a scheme on host is accepted: https:// turns TLS on.
  const scheme = /^(https?):\/\//i.exec(s.host);
  const host = scheme ? s.host.slice(scheme[0].length) : s.host;
  if (scheme?.[1].toLowerCase() === "https") s.tls = true;
  if (!host || /[/\s]/.test(host)) throw new RunnerError("FATAL_ERROR", `GrpcRunnerSettings.host is not a host name: ${JSON.stringify(s.host)}`);
  if (s.port < 1 || s.port > 65535) throw new RunnerError("FATAL_ERROR", `GrpcRunnerSettings.port must be 1-65535 (got ${s.port})`);
  s.host = host;
  const address = host.includes(":") && !host.startsWith("[") ? `[${host}]:${s.port}` : `${host}:${s.port}`;
  return { address, settings: s };
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `cannot read tls_config.${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function credentials(s: GrpcRunnerSettings): grpc.ChannelCredentials {
  if (!s.tls) return grpc.credentials.createInsecure();
  const t = s.tlsConfig;
  const ca = t?.caCertPath ? readPem(t.caCertPath, "ca_cert_path") : null; // null: Node's system roots
  if (!!t?.clientCertPath !== !!t?.clientKeyPath) {
    throw new RunnerError("FATAL_ERROR", "tls_config needs both client_cert_path and client_key_path (or neither)");
  }
  const key = t?.clientKeyPath ? readPem(t.clientKeyPath, "client_key_path") : null;
  const cert = t?.clientCertPath ? readPem(t.clientCertPath, "client_cert_path") : null;
  try {
    return grpc.credentials.createSsl(ca, key, cert);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid TLS settings: ${(e as Error).message}`);
  }
}

/** A client (one channel) to the target; requests go through its generic makeUnaryRequest/makeServerStreamRequest. */
export function openClient(t: Target): grpc.Client {
  const s = t.settings;
  const options: grpc.ClientOptions = {
    "grpc.enable_channelz": 0,
    // A static worker keeps its channel for hours: do not let a long outage push reconnects minutes apart.
    "grpc.max_reconnect_backoff_ms": 10_000,
  };
  if (s.maxMessageSize) {
    options["grpc.max_receive_message_length"] = s.maxMessageSize;
    options["grpc.max_send_message_length"] = s.maxMessageSize;
  }
  const override = s.tls ? s.tlsConfig?.serverNameOverride : undefined;
  if (override) {
    options["grpc.ssl_target_name_override"] = override;
    options["grpc.default_authority"] = override;
  }
  try {
    return new grpc.Client(t.address, credentials(s), options);
  } catch (e) {
    if (e instanceof RunnerError) throw e;
    throw new RunnerError("FATAL_ERROR", `cannot create a gRPC channel to ${t.address}: ${(e as Error).message}`);
  }
}

/**
 * Waits up to `timeoutMs` for the channel to connect. Resolves early when the channel reports a failure too:
 * the call that follows then fails at once with grpc-js's reason ("No connection established. Last error: ...").
 */
export async function awaitConnection(client: grpc.Client, address: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const channel = client.getChannel();
  const deadline = Date.now() + timeoutMs;
  let state = channel.getConnectivityState(true);
  while (state !== grpc.connectivityState.READY && state !== grpc.connectivityState.TRANSIENT_FAILURE) {
    if (state === grpc.connectivityState.SHUTDOWN) throw new RunnerError("OTHER_ERROR", "gRPC channel is closed");
    const changed = await new Promise<boolean>((resolve) => {
      const onAbort = () => resolve(false);
      signal.addEventListener("abort", onAbort, { once: true });
      channel.watchConnectivityState(state, deadline, (err) => {
        signal.removeEventListener("abort", onAbort);
        resolve(!err);
      });
    });
    if (signal.aborted) return;
    if (!changed) throw new RunnerError("ERROR_AND_RETRY", `cannot connect to ${address}: not connected within connection_timeout ${timeoutMs} ms`);
    state = channel.getConnectivityState(true);
  }
}
