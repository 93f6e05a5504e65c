// The AWS-mode settings read by cli/config.ts: DOCKER_BACKEND / ECS_* and the Lambda functions' config.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, loadDockerBackend, loadFunctionConfig } from "../../worker-container/src/cli/config.js";
import { dockerEngineFor } from "../../worker-container/src/cli/docker_engine.js";

const channelsFile = () => {
  const f = join(mkdtempSync(join(tmpdir(), "jw-cfg-")), "channels.json");
  writeFileSync(f, JSON.stringify({ channels: [{ name: "gpu", gpu: 2, cpu: 4096, memoryMiB: 16384, minTasks: 0, maxTasks: 2, scaleToZero: true }] }));
  return f;
};

const ECS_ENV = {
  DOCKER_BACKEND: "ecs",
  ECS_CLUSTER: "jobs",
  ECS_SUBNETS: "subnet-a, subnet-b",
  ECS_SECURITY_GROUPS: "sg-1",
  ECS_TASK_EXECUTION_ROLE_ARN: "arn:aws:iam::1:role/exec",
  ECS_LOG_GROUP: "/jobworkerp/jobs",
};

describe("DOCKER_BACKEND", () => {
  it("is local unless set to ecs; the local backend needs nothing else", () => {
    expect(loadDockerBackend({})).toEqual({ backend: "local" });
    expect(loadConfig("all-in-one", {}).dockerBackend).toEqual({ backend: "local" });
    expect(dockerEngineFor({ backend: "local" })).toBeUndefined();
  });

  it("ecs reads the ECS_* settings, the channels file and the AWS basics", () => {
    const cfg = loadDockerBackend({ ...ECS_ENV, ECS_GPU_CAPACITY_PROVIDER: "gpu-cp", CHANNELS_CONFIG: channelsFile(), AWS_REGION: "eu-west-1", AWS_RESOURCE_PREFIX: "acme" });
    expect(cfg.backend).toBe("ecs");
    expect(cfg.ecs).toMatchObject({
      cluster: "jobs",
      subnets: ["subnet-a", "subnet-b"],
      securityGroups: ["sg-1"],
      assignPublicIp: false,
      executionRoleArn: "arn:aws:iam::1:role/exec",
      logGroup: "/jobworkerp/jobs",
      gpuCapacityProvider: "gpu-cp",
      region: "eu-west-1",
      resourcePrefix: "acme",
    });
    expect(cfg.ecs!.channels.map((c) => [c.name, c.gpu])).toEqual([["gpu", 2]]);
    expect(dockerEngineFor(cfg)?.oneShotOnly).toBe(true);
  });

  it("says which setting is missing or wrong", () => {
    expect(() => loadDockerBackend({ DOCKER_BACKEND: "k8s" })).toThrow(/DOCKER_BACKEND must be local or ecs, got 'k8s'/);
    for (const name of ["ECS_CLUSTER", "ECS_SUBNETS", "ECS_TASK_EXECUTION_ROLE_ARN", "ECS_LOG_GROUP"]) {
      const env: Record<string, string> = { ...ECS_ENV };
      delete env[name];
      expect(() => loadDockerBackend(env)).toThrow(new ConfigError(`DOCKER_BACKEND=ecs needs ${name}`));
    }
  });
});

describe("loadFunctionConfig", () => {
  it("needs the channels file, and keeps the dispatch horizon within SQS's 15-minute delay", () => {
    expect(() => loadFunctionConfig({})).toThrow(/CHANNELS_CONFIG must name the channels file/);
    const CHANNELS_CONFIG = channelsFile();
    const cfg = loadFunctionConfig({ CHANNELS_CONFIG, ECS_CLUSTER: "jobs", AWS_ENDPOINT_URL: "http://127.0.0.1:5000" });
    expect(cfg.dispatchHorizonMs).toBe(75_000);
    expect(cfg.aws).toEqual({ region: "us-east-1", endpointUrl: "http://127.0.0.1:5000", resourcePrefix: "jobworkerp" });
    expect(cfg.ecsCluster).toBe("jobs");
    expect(loadFunctionConfig({ CHANNELS_CONFIG, DISPATCH_HORIZON_SEC: "900" }).dispatchHorizonMs).toBe(900_000);
    expect(() => loadFunctionConfig({ CHANNELS_CONFIG, DISPATCH_HORIZON_SEC: "901" })).toThrow(/at most 900/);
    expect(() => loadFunctionConfig({ CHANNELS_CONFIG, DISPATCH_HORIZON_SEC: "soon" })).toThrow(/DISPATCH_HORIZON_SEC must be an integer/);
  });

  it("takes the channels inline from CHANNELS_CONFIG_JSON, with a clear error for a bad one", () => {
    const cfg = loadFunctionConfig({ CHANNELS_CONFIG_JSON: JSON.stringify({ channels: [{ name: "batch", maxReceiveCount: 3 }] }) });
    expect(cfg.channels.map((c) => [c.name, c.maxReceiveCount])).toEqual([["batch", 3]]);
    expect(() => loadFunctionConfig({ CHANNELS_CONFIG_JSON: "{" })).toThrow(/CHANNELS_CONFIG_JSON: .*JSON/);
    expect(() => loadFunctionConfig({ CHANNELS_CONFIG_JSON: '{"channels":[{"name":"a b"}]}' })).toThrow(/CHANNELS_CONFIG_JSON: channels\[0\]\.name/);
  });
});
