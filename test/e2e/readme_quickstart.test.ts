// Runs README.md's Quickstart literally (its ```bash blocks), against a fresh server, with `buf curl`.
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { decodeCommandResult } from "../helpers/client.js";
import { useServer } from "../helpers/fixture.js";
import { REPO_ROOT } from "../helpers/protos.js";

const fx = useServer();
const README_ADDR = "127.0.0.1:9000";

/** The text between `## Quickstart` and the next `## ` heading. */
function quickstartSection(readme: string): string {
  const lines = readme.split("\n");
  const start = lines.findIndex((l) => /^## Quickstart\s*$/.test(l));
  if (start < 0) throw new Error("README.md has no '## Quickstart' section");
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end < 0) end = lines.length;
  return lines.slice(start + 1, end).join("\n");
}

/** Bodies of the ```bash fenced blocks. */
function bashBlocks(markdown: string): string[] {
  const out: string[] = [];
  const re = /^```bash[^\n]*\n([\s\S]*?)^```\s*$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) out.push(m[1]);
  return out;
}

/** Every top-level JSON object in `text` (e.g. pretty-printed buf curl output mixed with other lines). */
function jsonObjects(text: string): any[] {
  const out: any[] = [];
  let depth = 0;
  let start = -1;
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (c === "\\") i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"' && depth > 0) inStr = true;
    else if (c === "{") {
      if (depth++ === 0) start = i;
    } else if (c === "}" && depth > 0 && --depth === 0) {
      try {
        out.push(JSON.parse(text.slice(start, i + 1)));
      } catch {
        /* not JSON */
      }
    }
  }
  return out;
}

function runBash(script: string, timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "bash",
      ["-c", `set -euo pipefail\n${script}`],
      { cwd: REPO_ROOT, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: "1" } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("README quickstart", () => {
  it("runs as written and returns the result of `echo hello`", async () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    const section = quickstartSection(readme);
    const blocks = bashBlocks(section);
    expect(blocks.length, "Quickstart has a ```bash block").toBeGreaterThanOrEqual(1);
    const script = blocks.join("\n");
    expect(script).toContain(README_ADDR);
    expect(script).toContain("jobworkerp.service.WorkerService/Create");
    expect(script).toContain("jobworkerp.service.JobService/Enqueue");

    const res = await runBash(script.split(README_ADDR).join(fx.server.address), 60_000);
    expect(res.code, `bash failed\n--- stdout ---\n${res.stdout}\n--- stderr ---\n${res.stderr}`).toBe(0);

    const objs = jsonObjects(res.stdout);
    const created = objs.find((o) => o.id && !o.result);
    expect(created, `Create response in:\n${res.stdout}`).toBeDefined();
    const enq = objs.find((o) => o.result);
    expect(enq, `Enqueue response with a result in:\n${res.stdout}`).toBeDefined();
    const items: string = enq.result.data.output.items;
    const out = decodeCommandResult(Buffer.from(items, "base64"));
    expect(out.stdout).toBe("hello\n");
    expect(out.exit_code ?? 0).toBe(0);
    expect(enq.result.data.workerName ?? enq.result.data.worker_name).toBe("echo-worker");
    // the README's own decoding step prints the CommandResult as JSON
    expect(objs.some((o) => o.stdout === "hello\n"), `decoded CommandResult in:\n${res.stdout}`).toBe(true);
    // and the base64 the README says the args encode to is what the script computed
    expect(res.stdout).toContain("CgRlY2hvEgVoZWxsbw==");
  }, 90_000);
});
