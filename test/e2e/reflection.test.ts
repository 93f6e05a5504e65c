// Server reflection, exercised by an independent reflection client: `buf curl` with no local schema,
// run from an empty directory so it can only learn the API from the server.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useServer } from "../helpers/fixture.js";
import { REPO_ROOT } from "../helpers/protos.js";

const fx = useServer();
const BUF = path.join(REPO_ROOT, "node_modules/.bin/buf");

function bufCurl(args: string[]): Promise<{ code: number; out: string }> {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "reflection-"));
  return new Promise((resolve) =>
    execFile(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { cwd, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
}

describe("server reflection", () => {
  it("lists the jobworkerp services and resolves their methods and message types", async () => {
    const base = `http://${fx.server.address}`;
    const list = await bufCurl(["--list-services", base]);
    expect(list.code, list.out).toBe(0);
    for (const s of ["WorkerService", "JobService", "JobResultService", "RunnerService", "JobProcessingStatusService", "JobRestoreService", "WorkerInstanceService"]) {
      expect(list.out).toContain(`jobworkerp.service.${s}`);
    }
    // a call whose request and response types live in imported files (data/*.proto)
    const runners = await bufCurl(["-d", '{"runner_types":["COMMAND"]}', `${base}/jobworkerp.service.RunnerService/FindListBy`]);
    expect(runners.code, runners.out).toBe(0);
    expect(JSON.parse(runners.out).data.name).toBe("COMMAND");
    const created = await bufCurl(["-d", '{"name":"via-reflection","runner_id":{"value":1},"response_type":"DIRECT"}', `${base}/jobworkerp.service.WorkerService/Create`]);
    expect(created.code, created.out).toBe(0);
    expect(Number(JSON.parse(created.out).id.value)).toBeGreaterThan(0);
  });
});
