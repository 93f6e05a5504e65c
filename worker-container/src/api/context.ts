// Transport-agnostic RPC handlers: request in, response (or async iterable of responses) out.
// grpc-js mounts them (grpc.ts); gRPC-Web and MCP fronts can mount the same handlers.
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";

export interface CallContext {
  /** Request headers that are not jobworkerp's own (`jobworkerp-*`) nor transport headers: copied into job metadata. */
  metadata: Record<string, string>;
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
  /** Response headers, sent before the first message of a stream (e.g. x-job-id-bin). */
  sendHeaders(headers: Record<string, Uint8Array | string>): void;
}

type Impl<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (req: MessageShape<I>, ctx: CallContext) => Promise<MessageInitShape<O>>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (req: MessageShape<I>, ctx: CallContext) => AsyncIterable<MessageInitShape<O>>
    : M extends { methodKind: "bidi_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? (reqs: AsyncIterable<MessageShape<I>>, ctx: CallContext) => AsyncIterable<MessageInitShape<O>>
      : never;

export type ServiceImpl<S> = S extends GenService<infer T extends GenServiceMethods> ? { [K in keyof T]: Impl<T[K]> } : never;
