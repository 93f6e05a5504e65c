// Assertions on runner failures, shared by the runner tests.
import { expect } from "vitest";
import { RunnerError } from "../../worker-container/src/runners/runner.js";

export async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => expect.fail("expected a rejection"),
    (e: unknown) => e,
  );
}

export async function expectRunnerError(p: Promise<unknown>, kind: string, msg?: RegExp) {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(RunnerError);
  expect((e as RunnerError).kind).toBe(kind);
  if (msg) expect((e as RunnerError).message).toMatch(msg);
}
