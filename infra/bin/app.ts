// `npx cdk synth|deploy`: the AWS shape of jobworkerp. Settings come from CDK context (cdk.json, `-c key=value`;
// see infra/config.ts and docs/deploy-aws.md); nothing is looked up in AWS at synth time.
import { pathToFileURL } from "node:url";
import { App } from "aws-cdk-lib";
import { deploymentConfig } from "../config.js";
import { JobworkerpStack } from "../stacks/jobworkerp-stack.js";

export function buildApp(app = new App()): { app: App; stack: JobworkerpStack } {
  const config = deploymentConfig((key) => app.node.tryGetContext(key), process.env);
  const stack = new JobworkerpStack(app, config.resourcePrefix, {
    config,
    env: { account: config.account, region: config.region },
    description: "jobworkerp: gRPC front, channel workers, SQS queues, DynamoDB job state, MySQL, Valkey, Lambdas",
  });
  return { app, stack };
}

// run as the CDK app (not when a test imports buildApp)
if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) buildApp().app.synth();
