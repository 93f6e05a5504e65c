// AWS clients for tests against the run's local endpoint (moto server from the global setup), with static
// credentials passed as client config; each test file works under its own resource prefix.
import { inject } from "vitest";
import { createAwsClients, type AwsClientConfig, type AwsClients } from "../../worker-container/src/adapters/aws/clients.js";
import { LOCAL_AWS_CREDENTIALS, LOCAL_AWS_REGION } from "./moto.js";

export function awsTestConfig(): AwsClientConfig {
  const endpointUrl = inject("awsEndpoint");
  if (!endpointUrl) throw new Error(inject("awsError") || "no local AWS endpoint");
  return { region: LOCAL_AWS_REGION, endpointUrl, credentials: { ...LOCAL_AWS_CREDENTIALS }, maxAttempts: 2 };
}

export function testAwsClients(): AwsClients {
  return createAwsClients(awsTestConfig());
}

let seq = 0;
/** A resource prefix of one's own (queue names allow 80 characters: keep it short). */
export function newResourcePrefix(tag: string): string {
  return `t${tag}${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}${seq++}`;
}

/** Counts the API calls a client makes, by operation (e.g. "ReceiveMessageCommand"). */
export function countCalls(client: { middlewareStack: { add: (mw: never, opts: { step: "initialize"; name: string }) => void } }): Map<string, number> {
  const counts = new Map<string, number>();
  const mw = ((next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
    const name = context.commandName ?? "?";
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return next(args);
  }) as never;
  client.middlewareStack.add(mw, { step: "initialize", name: `countCalls${seq++}` });
  return counts;
}
