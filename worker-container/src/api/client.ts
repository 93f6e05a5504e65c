// A grpc-js client for any generated service, with protobuf-es codecs (used by the benchmark and the CLI client).
import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/** A grpc-js client constructor for a generated service (protobuf-es messages in and out). */
export function serviceClientConstructor(service: DescService): grpc.ServiceClientConstructor {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) {
    const input: DescMessage = m.input;
    const output: DescMessage = m.output;
    definition[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
      responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      requestSerialize: (msg: unknown) => Buffer.from(toBinary(input, create(input, msg as never))),
      requestDeserialize: (buf: Buffer) => fromBinary(input, buf),
      responseSerialize: (msg: unknown) => Buffer.from(toBinary(output, msg as never)),
      responseDeserialize: (buf: Buffer) => fromBinary(output, buf),
    };
  }
  return grpc.makeGenericClientConstructor(definition as grpc.ServiceDefinition, service.name);
}

export function serviceClient(service: DescService, address: string, options: grpc.ClientOptions = {}): grpc.Client {
  const Ctor = serviceClientConstructor(service);
  return new Ctor(address, grpc.credentials.createInsecure(), options);
}

/** Promise form of a unary call. */
export function unary<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: string,
  req: MessageInitShape<I>,
  metadata = new grpc.Metadata(),
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Function>)[method](req, metadata, (err: grpc.ServiceError | null, res: MessageShape<O>) =>
      err ? reject(err) : resolve(res),
    );
  });
}
