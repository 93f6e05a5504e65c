// AUTH_TOKEN: every jobworkerp RPC needs `jobworkerp-auth: <token>`; health does not.
import { describe, expect, it } from "vitest";
import {
  COMMAND_RUNNER_ID,
  Status,
  collectSettled,
  commandOutput,
  encodeCommandArgs,
  expectRpcError,
  healthCheck,
  rawUnaryTyped,
} from "../helpers/client.js";
import { expectAlive, expectCode, uniqueName, useServer } from "../helpers/fixture.js";

const TOKEN = "s3cret-e2e-token";
const fx = useServer({ env: { AUTH_TOKEN: TOKEN }, token: TOKEN });

describe("auth", () => {
  it("health Check works without a token", async () => {
    expect(await healthCheck(fx.server.address)).toBe("SERVING");
  });

  it("missing token -> UNAUTHENTICATED (unary and streaming, every service)", async () => {
    const none = { token: null };
    const calls: [string, () => Promise<unknown>][] = [
      ["WorkerService.CountBy", () => fx.api.worker.CountBy({}, none)],
      ["WorkerService.Create", () => fx.api.worker.Create({ name: uniqueName("noauth"), runner_id: { value: COMMAND_RUNNER_ID } }, none)],
      ["JobService.Enqueue", () => fx.api.job.Enqueue({ worker_name: "whatever", args: encodeCommandArgs({ command: "true" }) }, none)],
      ["JobService.Count", () => fx.api.job.Count({}, none)],
      ["JobResultService.CountBy", () => fx.api.jobResult.CountBy({}, none)],
      ["RunnerService.Find", () => fx.api.runner.Find({ value: COMMAND_RUNNER_ID }, none)],
      ["JobProcessingStatusService.Find", () => fx.api.jobStatus.Find({ value: 1 }, none)],
      ["JobRestoreService.Restore", () => fx.api.jobRestore.Restore({}, none)],
      ["WorkerInstanceService.Count", () => fx.api.workerInstance.Count({}, none)],
    ];
    for (const [name, p] of calls) {
      const err = await expectRpcError(p()).catch((e) => {
        throw new Error(`${name}: ${e.message}`);
      });
      expect({ name, code: err.code }).toEqual({ name, code: Status.UNAUTHENTICATED });
    }
    const s = await collectSettled(fx.api.runner.FindListBy({}, none));
    expect(s.items).toEqual([]);
    expectCode(s.error!, Status.UNAUTHENTICATED);
    // raw path (no proto-loader involvement) as well
    const raw = await expectRpcError(rawUnaryTyped(fx.server.address, "WorkerService", "CountBy", {}));
    expectCode(raw, Status.UNAUTHENTICATED);
    await expectAlive(fx);
  });

  it("wrong token -> UNAUTHENTICATED, and nothing is created", async () => {
    const name = uniqueName("wrongauth");
    const err = await expectRpcError(
      fx.api.worker.Create({ name, runner_id: { value: COMMAND_RUNNER_ID } }, { token: `${TOKEN}x` }),
    );
    expectCode(err, Status.UNAUTHENTICATED);
    expectCode(await expectRpcError(fx.api.worker.CountBy({}, { token: "" })), Status.UNAUTHENTICATED);
    expect((await fx.api.worker.FindByName({ name })).response.data).toBeUndefined();
  });

  it("the right token works (create a worker, run a DIRECT job)", async () => {
    const { response } = await fx.api.worker.Create({
      name: uniqueName("authed"),
      runner_id: { value: COMMAND_RUNNER_ID },
      response_type: "DIRECT",
    });
    const r = await fx.api.job.Enqueue(
      { worker_id: response.id, args: encodeCommandArgs({ command: "echo", args: ["authed"] }) },
      { timeoutMs: 10_000 },
    );
    expect(commandOutput(r.response.result).stdout).toBe("authed\n");
    const raw = await rawUnaryTyped<{ total: string }>(fx.server.address, "WorkerService", "CountBy", {}, { token: TOKEN });
    expect(Number(raw.total)).toBeGreaterThanOrEqual(1);
  });
});
