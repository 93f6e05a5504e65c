// The same app with other settings: a channel added to the channels file (its queues, service, scaling and alarms
// appear with no stack code change), a TLS listener with a certificate, Aurora Serverless v2, and bad settings
// refused at synth with a clear message.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { AwsSolutionsChecks } from "cdk-nag";
import { beforeAll, describe, expect, it } from "vitest";
import { deploymentConfig, DeploymentConfigError } from "../../infra/config.js";
import { channelQueues, workerServiceName } from "../../worker-container/src/adapters/aws/resources.js";
import { parseChannelsConfig } from "../../worker-container/src/core/channel_config.js";
import { ofType, REPO, synth, type Synth } from "./synth.js";

const PREFIX = "jw-test";
const CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-123456789abc";
const base = JSON.parse(fs.readFileSync(path.join(REPO, "channels.json"), "utf8"));
const extra = { name: "reports", concurrency: 2, cpu: 256, memoryMiB: 512, minTasks: 0, maxTasks: 3, scaleToZero: true, targetBacklogPerTask: 5, subQueues: [{ name: "urgent", weight: 4 }, { name: "bulk", weight: 1 }] };
let s: Synth;
let channelsFile: string;
/** Queue pairs of the repository's channels and of the extra one (sub-queues × priorities each). */
const basePairs = () => parseChannelsConfig(base).flatMap((c) => channelQueues(PREFIX, c)).length;
const extraPairs = () => channelQueues(PREFIX, parseChannelsConfig({ channels: [extra] })[0]).length;

beforeAll(() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "jobworkerp-channels-"));
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  channelsFile = path.join(dir, "channels.json");
  fs.writeFileSync(channelsFile, JSON.stringify({ channels: [...base.channels, extra] }));
  const ctx = { resourcePrefix: PREFIX, account: "123456789012", region: "eu-west-1", availabilityZones: "eu-west-1a,eu-west-1b,eu-west-1c" };
  s = synth({ ...ctx, channelsFile, certificateArn: CERT, internetFacing: "true", auroraServerless: "true" });
});

const count = (x: Synth, type: string) => ofType(x, type).length;

describe("a channel added to the channels file", () => {
  it("gets its queues with DLQs and redrive, for each sub-queue and priority", () => {
    const spec = parseChannelsConfig({ channels: [extra] })[0];
    const queues = channelQueues(PREFIX, spec);
    expect(queues.filter((q) => q.channel === "reports:urgent" || q.channel === "reports:bulk")).toHaveLength(6);
    for (const q of queues) {
      const dlq = ofType(s, "AWS::SQS::Queue").find(([, r]) => r.Properties!.QueueName === q.dlqName);
      expect(dlq, q.dlqName).toBeDefined();
      s.template.hasResourceProperties("AWS::SQS::Queue", { QueueName: q.name, RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": [dlq![0], "Arn"] }, maxReceiveCount: 5 } });
    }
    expect(count(s, "AWS::SQS::Queue")).toBe(2 * (basePairs() + extraPairs()));
  });

  it("gets a Fargate service named for the runtime, with backlog scaling in its bounds and a wake/sleep pair", () => {
    const [svcId, svc] = ofType(s, "AWS::ECS::Service").find(([, r]) => r.Properties!.ServiceName === workerServiceName(PREFIX, "reports"))!;
    expect(svc.Properties!.LaunchType).toBe("FARGATE");
    const [targetId, target] = ofType(s, "AWS::ApplicationAutoScaling::ScalableTarget").find(([, t]) => JSON.stringify(t.Properties!.ResourceId).includes(svcId))!;
    expect(target.Properties).toMatchObject({ MinCapacity: 0, MaxCapacity: 3 });
    const policies = ofType(s, "AWS::ApplicationAutoScaling::ScalingPolicy").filter(([, p]) => p.Properties!.ScalingTargetId.Ref === targetId);
    expect(policies.map(([, p]) => p.Properties!.PolicyType).sort()).toEqual(["StepScaling", "StepScaling", "TargetTrackingScaling"]);
    const tracking = policies.find(([, p]) => p.Properties!.PolicyType === "TargetTrackingScaling")![1].Properties!;
    expect(tracking.TargetTrackingScalingPolicyConfiguration.TargetValue).toBe(5);
    const all = parseChannelsConfig({ channels: [...base.channels, extra] });
    expect(count(s, "AWS::ECS::Service")).toBe(all.length + 1); // + the front
    // an age and a DLQ alarm per queue pair, a wake and a sleep alarm per channel that may sleep
    expect(count(s, "AWS::CloudWatch::Alarm")).toBe(2 * (basePairs() + extraPairs()) + 2 * all.filter((c) => c.scaleToZero).length);
    expect(count(s, "AWS::Lambda::EventSourceMapping")).toBe(basePairs() + extraPairs());
  });
});

describe("settings", () => {
  it("listens with TLS on 443 and offers h2 by ALPN when given a certificate, on an Internet-facing NLB", () => {
    s.template.hasResourceProperties("AWS::ElasticLoadBalancingV2::Listener", {
      Port: 443,
      Protocol: "TLS",
      AlpnPolicy: ["HTTP2Only"],
      Certificates: [{ CertificateArn: CERT }],
    });
    s.template.hasResourceProperties("AWS::ElasticLoadBalancingV2::LoadBalancer", { Scheme: "internet-facing" });
    s.template.hasResourceProperties("AWS::ElasticLoadBalancingV2::TargetGroup", { Port: 9000, HealthCheckProtocol: "TCP" });
  });

  it("uses Aurora MySQL Serverless v2, encrypted, when asked, and spans the zones it is given", () => {
    expect(count(s, "AWS::RDS::DBInstance")).toBe(1); // the writer
    s.template.hasResourceProperties("AWS::RDS::DBCluster", {
      Engine: "aurora-mysql",
      StorageEncrypted: true,
      ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 16 },
    });
    s.template.hasResourceProperties("AWS::RDS::DBInstance", { DBInstanceClass: "db.serverless" });
    const azs = ofType(s, "AWS::EC2::Subnet").map(([, r]) => r.Properties!.AvailabilityZone);
    expect(new Set(azs)).toEqual(new Set(["eu-west-1a", "eu-west-1b", "eu-west-1c"]));
  });

  it("still passes cdk-nag's AwsSolutions checks", () => {
    const report = new AwsSolutionsChecks().validateScope(s.stack);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(", ")}`)).toEqual([]);
  });

  it("refuses bad settings with a clear message", () => {
    const cfg = (ctx: Record<string, unknown>) => () => deploymentConfig((k) => ctx[k]);
    expect(cfg({ internetFacing: "true" })).toThrow(/internetFacing.*certificateArn/);
    expect(cfg({ availabilityZones: "us-east-1a" })).toThrow(/at least two zones/);
    expect(cfg({ region: "eu-west-1", availabilityZones: "us-east-1a,us-east-1b" })).toThrow(/not in region/);
    expect(cfg({ resourcePrefix: "Bad_Prefix" })).toThrow(/resourcePrefix/);
    expect(cfg({ logRetentionDays: 10 })).toThrow(/logRetentionDays/);
    expect(cfg({ multiAz: "yes" })).toThrow(/true or false/);
    expect(cfg({ natGateways: 0, interfaceEndpoints: false })).toThrow(/natGateways.*interfaceEndpoints/);
    expect(cfg({ channelsFile: "no-such-file.json" })).toThrow(DeploymentConfigError);
    const bad = path.join(path.dirname(channelsFile), "bad.json");
    fs.writeFileSync(bad, JSON.stringify({ channels: [{ name: "x", cpu: 100 }] }));
    expect(cfg({ channelsFile: bad })).toThrow(/channels\[0\]\.cpu/);
  });

  it("refuses a channel whose CPU and memory are not a Fargate size", () => {
    const odd = path.join(path.dirname(channelsFile), "odd.json");
    fs.writeFileSync(odd, JSON.stringify({ channels: [{ name: "odd", cpu: 512, memoryMiB: 5000 }] }));
    expect(() => synth({ channelsFile: odd })).toThrow(/channel 'odd': memoryMiB 5000 does not fit cpu 512 on Fargate/);
  });
});
