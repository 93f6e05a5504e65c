// The real, pinned CDK CLI synthesizes the app offline, as CI and a user would: the Lambdas are bundled by the
// local esbuild (each with the channels file), the image's build context is staged (only what the Dockerfile
// copies), and CDK's built-in CloudFormation validation finds nothing (cdk.json turns its findings into errors).
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO } from "./synth.js";

const out = fs.mkdtempSync(path.join(os.tmpdir(), "jobworkerp-cdk-cli-"));
let run: { code: number | null; output: string; ms: number };

function cdkSynth(): Promise<typeof run> {
  const started = Date.now();
  const env: Record<string, string> = { ...(process.env as Record<string, string>) };
  for (const k of ["VITEST", "VITEST_POOL_ID", "VITEST_WORKER_ID", "NODE_OPTIONS", "CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"]) delete env[k];
  Object.assign(env, {
    // offline: no credential lookup on an instance metadata address, no notices, telemetry or version checks
    AWS_EC2_METADATA_DISABLED: "true",
    CDK_DISABLE_CLI_TELEMETRY: "true",
    CDK_DISABLE_VERSION_CHECK: "1",
  });
  return new Promise((resolve) => {
    const child = spawn(path.join(REPO, "node_modules/.bin/cdk"), ["synth", "--quiet", "--no-notices", "-o", out], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    child.on("close", (code) => resolve({ code, output, ms: Date.now() - started }));
  });
}

beforeAll(async () => {
  run = await cdkSynth();
}, 300_000);

afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

describe("npx cdk synth (the pinned CLI, offline)", () => {
  it("succeeds and writes the stack's template", () => {
    expect(run.code, run.output.slice(-3000)).toBe(0);
    const template = JSON.parse(fs.readFileSync(path.join(out, "jobworkerp.template.json"), "utf8"));
    expect(Object.keys(template.Resources).length).toBeGreaterThan(200);
    console.log(`cdk synth took ${(run.ms / 1000).toFixed(1)} s`);
  });

  it("reports no finding of CDK's built-in CloudFormation validation", () => {
    const reportFile = path.join(out, "validation-report.json");
    const report = fs.existsSync(reportFile) ? JSON.parse(fs.readFileSync(reportFile, "utf8")) : { pluginReports: [] };
    const violations = (report.pluginReports ?? []).flatMap((p: any) => p.violations.map((v: any) => `${v.ruleName}: ${v.description}`));
    expect(violations).toEqual([]);
  });

  it("bundles each Lambda with esbuild, the channels file beside it", () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(out, "jobworkerp.assets.json"), "utf8"));
    const zips = Object.values<any>(manifest.files).filter((f) => f.source.packaging === "zip");
    expect(zips.length).toBe(3);
    for (const f of zips) {
      const dir = path.join(out, f.source.path);
      const bundle = fs.readFileSync(path.join(dir, "index.mjs"), "utf8");
      expect(bundle).toMatch(/export\s*\{[^}]*\bhandler\b/);
      expect(fs.readFileSync(path.join(dir, "channels.json"), "utf8")).toBe(fs.readFileSync(path.join(REPO, "channels.json"), "utf8"));
      // self-contained (the AWS SDK included): the bundle loads in a bare Node with nothing beside it
      const loaded = execFileSync(process.execPath, ["-e", 'import("./index.mjs").then((m) => console.log(typeof m.handler))'], { cwd: dir, encoding: "utf8", timeout: 60_000 });
      expect(loaded.trim()).toBe("function");
    }
  });

  it("stages the image's build context with only what the Dockerfile copies", () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(out, "jobworkerp.assets.json"), "utf8"));
    const images = Object.values<any>(manifest.dockerImages);
    expect(images).toHaveLength(1);
    expect(images[0].source.dockerFile).toBe("worker-container/Dockerfile");
    const ctx = path.join(out, images[0].source.directory);
    const top = fs.readdirSync(ctx).sort();
    expect(top).toEqual([".dockerignore", "channels.json", "package-lock.json", "package.json", "proto", "tsconfig.json", "worker-container"]);
    expect(fs.existsSync(path.join(ctx, "worker-container/Dockerfile"))).toBe(true);
  });
});
