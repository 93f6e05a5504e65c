// Telemetry switched off, or pointed at a collector that is gone: jobs run as usual. Outside test/e2e on purpose:
// the no-op path is the same code in both shapes, so it runs once (embedded all-in-one), not again on a cluster.
import { describe, expect, it } from "vitest";
import { encodeCommandArgs, grpc } from "../helpers/client.js";
import { createCommandWorker, serverApi, uniqueName } from "../helpers/fixture.js";
import { startOtlpReceiver } from "../helpers/otlp_receiver.js";
import { startServer } from "../helpers/server.js";

describe("without OTLP_ADDR", () => {
  it("no spans are produced and jobs carry no trace context of their own", async () => {
    const quiet = await startOtlpReceiver();
    // even the SDK's standard variable must not switch tracing on: only OTLP_ADDR does
    const server = await startServer({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: quiet.url, OTEL_BSP_SCHEDULE_DELAY: "100" } });
    const api = serverApi(server);
    try {
      const name = uniqueName("untraced");
      await createCommandWorker(api, { name, response_type: "DIRECT" });
      const { response } = await api.job.Enqueue({ worker_name: name, args: encodeCommandArgs({ command: "echo", args: ["x"] }) }, { timeoutMs: 15_000 });
      expect(response.result?.data.status).toBe("SUCCESS");
      expect(response.result!.metadata.traceparent).toBeUndefined();
      // an incoming traceparent is passed along untouched (it is just request metadata)
      const md = new grpc.Metadata();
      md.set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
      const again = await api.job.Enqueue({ worker_name: name, args: encodeCommandArgs({ command: "echo", args: ["x"] }) }, { timeoutMs: 15_000, metadata: md });
      expect(again.response.result!.metadata.traceparent).toBe("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    } finally {
      api.close();
      expect(await server.stop("SIGTERM", 10_000)).toBe(0);
      await quiet.close();
    }
    // a graceful stop flushes exporters: had any been registered, their spans would have arrived by now
    expect(quiet.requests).toEqual([]);
  });

  it("an unreachable collector fails no job and does not hold up shutdown", async () => {
    const gone = await startOtlpReceiver();
    await gone.close(); // a port nobody listens on any more
    const server = await startServer({ env: { OTLP_ADDR: gone.url, OTEL_BSP_SCHEDULE_DELAY: "50" } });
    const api = serverApi(server);
    try {
      const name = uniqueName("no-collector");
      await createCommandWorker(api, { name, response_type: "DIRECT" });
      for (let i = 0; i < 2; i++) {
        const { response } = await api.job.Enqueue({ worker_name: name, args: encodeCommandArgs({ command: "echo", args: ["x"] }) }, { timeoutMs: 15_000 });
        expect(response.result?.data.status).toBe("SUCCESS");
        expect(response.result!.metadata.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      }
    } finally {
      api.close();
      expect(await server.stop("SIGTERM", 10_000)).toBe(0);
    }
    // the exporter retries in the background; at the latest, shutdown reports what it could not send
    expect(server.logs()).toMatch(/opentelemetry:|flushing telemetry/);
  });
});
