// Synthesizes the CDK app for the infra tests: offline, without bundling the Lambdas (the CLI test bundles them)
// and without CDK's built-in template validation (the CLI test runs it, as errors: cdk.json). One synth per test
// file, shared by its tests.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { buildApp } from "../../infra/bin/app.js";
import type { JobworkerpStack } from "../../infra/stacks/jobworkerp-stack.js";

export interface Synth {
  stack: JobworkerpStack;
  template: Template;
  /** The raw template: Resources by logical id. */
  resources: Record<string, { Type: string; Properties?: Record<string, any>; DependsOn?: unknown }>;
  outdir: string;
}

export function synth(context: Record<string, unknown> = {}): Synth {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), "jobworkerp-cdk-"));
  process.once("exit", () => fs.rmSync(outdir, { recursive: true, force: true }));
  const app = new App({
    outdir,
    builtinCloudFormationValidation: false,
    context: { "aws:cdk:bundling-stacks": [], "aws:cdk:disable-asset-staging": true, ...context },
  });
  const { stack } = buildApp(app);
  const template = Template.fromStack(stack);
  return { stack, template, resources: template.toJSON().Resources, outdir };
}

/** Logical ids and resources of one type. */
export function ofType(s: Synth, type: string): [string, { Properties?: Record<string, any> }][] {
  return Object.entries(s.resources).filter(([, r]) => r.Type === type);
}

export const REPO = path.resolve(import.meta.dirname, "../..");
