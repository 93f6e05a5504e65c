// The AWS shape as synthesized from the repository's channels.json: queues, GPU capacity, autoscaling, the front,
// network reachability of the stores, IAM, encryption, the Lambdas, and cdk-nag's AwsSolutions checks.
import fs from "node:fs";
import path from "node:path";
import { Match } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { beforeAll, describe, expect, it } from "vitest";
import { channelQueues, JOB_STATE_TABLE, workerServiceName } from "../../worker-container/src/adapters/aws/resources.js";
import { parseChannelsConfig, type ChannelSpec } from "../../worker-container/src/core/channel_config.js";
import { DEFAULT_CHANNEL } from "../../worker-container/src/core/workers.js";
import { ofType, REPO, synth, type Synth } from "./synth.js";

const PREFIX = "jobworkerp";
const channels: ChannelSpec[] = parseChannelsConfig(JSON.parse(fs.readFileSync(path.join(REPO, "channels.json"), "utf8")));
let s: Synth;

beforeAll(() => {
  s = synth();
});

/** The logical id of the resource whose property `key` equals `value`. */
function idWhere(type: string, key: string, value: unknown): string {
  const hit = ofType(s, type).find(([, r]) => JSON.stringify(r.Properties?.[key]) === JSON.stringify(value));
  if (!hit) throw new Error(`no ${type} with ${key} = ${JSON.stringify(value)}`);
  return hit[0];
}

function service(channel: ChannelSpec) {
  const id = idWhere("AWS::ECS::Service", "ServiceName", workerServiceName(PREFIX, channel.name));
  return { id, props: s.resources[id].Properties! };
}

function taskDefinitionOf(serviceProps: Record<string, any>) {
  const id = serviceProps.TaskDefinition.Ref as string;
  return s.resources[id].Properties!;
}

describe("queues", () => {
  it("has one queue and one DLQ per channel (or sub-queue) and priority, redriven after the channel's maxReceiveCount", () => {
    const expected = channels.flatMap((c) => channelQueues(PREFIX, c).map((q) => ({ ...q, maxReceiveCount: c.maxReceiveCount })));
    // every sub-queue of llm, and every priority, has its own pair
    expect(expected.filter((q) => q.channel.startsWith("llm:")).length).toBe(6);
    for (const q of expected) {
      const dlqId = idWhere("AWS::SQS::Queue", "QueueName", q.dlqName);
      s.template.hasResourceProperties("AWS::SQS::Queue", {
        QueueName: q.name,
        SqsManagedSseEnabled: true,
        RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": [dlqId, "Arn"] }, maxReceiveCount: q.maxReceiveCount },
      });
    }
    s.template.resourceCountIs("AWS::SQS::Queue", expected.length * 2);
  });

  it("accepts only TLS requests on every queue", () => {
    const policies = ofType(s, "AWS::SQS::QueuePolicy");
    expect(policies.length).toBe(ofType(s, "AWS::SQS::Queue").length);
    for (const [, p] of policies) {
      expect(p.Properties!.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
      );
    }
  });

  it("alarms on every DLQ's depth and every queue's oldest message", () => {
    const alarms = ofType(s, "AWS::CloudWatch::Alarm").map(([, a]) => a.Properties!);
    const queues = channels.flatMap((c) => channelQueues(PREFIX, c));
    const ageAlarms = alarms.filter((a) => a.MetricName === "ApproximateAgeOfOldestMessage");
    const dlqAlarms = alarms.filter((a) => JSON.stringify(a.Metrics ?? []).includes("ApproximateNumberOfMessagesNotVisible") && JSON.stringify(a.Metrics).includes("-dlq"));
    expect(ageAlarms.length).toBe(queues.length);
    expect(dlqAlarms.length).toBe(queues.length);
    for (const a of [...ageAlarms, ...dlqAlarms]) expect(a.AlarmActions?.length).toBe(1);
  });
});

describe("compute", () => {
  const gpuChannels = () => channels.filter((c) => c.gpu > 0);

  it("gives each channel a service named as the runtime expects, running the worker role for that channel", () => {
    for (const c of channels) {
      const td = taskDefinitionOf(service(c).props);
      const worker = td.ContainerDefinitions.find((d: any) => d.Name === "worker");
      expect(worker.Command).toEqual(["worker"]);
      const env = Object.fromEntries(worker.Environment.map((e: any) => [e.Name, e.Value]));
      expect(env).toMatchObject({ STORAGE_TYPE: "Aws", AWS_RESOURCE_PREFIX: PREFIX, CHANNELS_CONFIG: "/app/channels.json", WORKER_CHANNELS: c.name, WORKER_CHANNEL_CONCURRENCIES: String(c.concurrency) });
      expect(env.WORKER_DEFAULT_CHANNEL_DISABLED).toBe(c.name === DEFAULT_CHANNEL ? undefined : "true");
      expect(worker.Secrets.map((x: any) => x.Name).sort()).toEqual(["MYSQL_PASSWORD", "MYSQL_USER", "REDIS_PASSWORD"]);
    }
  });

  it("runs GPU channels on EC2 with GPU resource requirements, only through their GPU capacity provider", () => {
    expect(gpuChannels().length).toBeGreaterThan(0);
    for (const c of gpuChannels()) {
      const { props } = service(c);
      expect(props.LaunchType).toBeUndefined();
      expect(props.CapacityProviderStrategy).toHaveLength(1);
      const cpRef = props.CapacityProviderStrategy[0].CapacityProvider;
      const cp = s.resources[cpRef.Ref];
      expect(cp.Type).toBe("AWS::ECS::CapacityProvider");
      const asg = s.resources[cp.Properties!.AutoScalingGroupProvider.AutoScalingGroupArn.Ref];
      expect(asg.Properties!.LaunchTemplate).toBeDefined();
      expect(asg.Properties!.LaunchConfigurationName).toBeUndefined();
      const lt = s.resources[asg.Properties!.LaunchTemplate.LaunchTemplateId.Ref].Properties!;
      const ami = JSON.stringify(lt.LaunchTemplateData.ImageId);
      expect(s.template.toJSON().Parameters[JSON.parse(ami).Ref].Default).toBe("/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id");
      const td = taskDefinitionOf(props);
      expect(td.RequiresCompatibilities).toEqual(["EC2"]);
      const gpus = td.ContainerDefinitions.flatMap((d: any) => (d.ResourceRequirements ?? []).filter((r: any) => r.Type === "GPU").map((r: any) => Number(r.Value)));
      expect(gpus).toEqual([c.gpu]);
    }
    s.template.resourceCountIs("AWS::AutoScaling::LaunchConfiguration", 0);
    for (const c of channels.filter((x) => x.gpu === 0)) {
      const td = taskDefinitionOf(service(c).props);
      expect(td.RequiresCompatibilities).toEqual(["FARGATE"]);
      expect(JSON.stringify(td.ContainerDefinitions)).not.toContain('"GPU"');
    }
  });

  it("mounts the Docker socket only where the channel uses the local engine, and puts the model server beside the LLM worker", () => {
    for (const c of channels) {
      const td = taskDefinitionOf(service(c).props);
      const worker = td.ContainerDefinitions.find((d: any) => d.Name === "worker");
      const env = Object.fromEntries(worker.Environment.map((e: any) => [e.Name, e.Value]));
      const mountsSocket = (worker.MountPoints ?? []).some((m: any) => m.ContainerPath === "/var/run/docker.sock");
      expect(mountsSocket).toBe(!!c.localDocker);
      expect(env.DOCKER_BACKEND).toBe(c.localDocker ? undefined : "ecs");
      if (!c.localDocker) expect(Object.keys(env)).toEqual(expect.arrayContaining(["ECS_CLUSTER", "ECS_SUBNETS", "ECS_SECURITY_GROUPS", "ECS_TASK_EXECUTION_ROLE_ARN", "ECS_LOG_GROUP"]));
      const server = td.ContainerDefinitions.find((d: any) => d.Name === "model-server");
      expect(!!server).toBe(!!c.modelServer);
      if (c.modelServer) {
        expect(server.Image).toBe(c.modelServer.image);
        expect(server.PortMappings).toEqual([expect.objectContaining({ ContainerPort: c.modelServer.port })]);
        expect(td.NetworkMode).toBe("awsvpc"); // the worker reaches it on localhost
        expect(worker.DependsOn).toEqual([{ ContainerName: "model-server", Condition: "START" }]);
      }
    }
  });

  it("scales every worker service on its backlog per task within the channel's bounds, and wakes sleeping channels", () => {
    const policies = ofType(s, "AWS::ApplicationAutoScaling::ScalingPolicy").map(([, p]) => p.Properties!);
    for (const c of channels) {
      const svc = service(c);
      const [targetId, target] = ofType(s, "AWS::ApplicationAutoScaling::ScalableTarget").find(([, t]) => JSON.stringify(t.Properties!.ResourceId).includes(svc.id))!;
      expect(target.Properties).toMatchObject({ MinCapacity: c.minTasks, MaxCapacity: c.maxTasks, ScalableDimension: "ecs:service:DesiredCount" });
      const mine = policies.filter((p) => p.ScalingTargetId?.Ref === targetId);
      const tracking = mine.filter((p) => p.PolicyType === "TargetTrackingScaling");
      expect(tracking).toHaveLength(1);
      expect(tracking[0].TargetTrackingScalingPolicyConfiguration).toMatchObject({
        TargetValue: c.targetBacklogPerTask,
        CustomizedMetricSpecification: { Namespace: "Jobworkerp", MetricName: "BacklogPerTask", Dimensions: [{ Name: "Channel", Value: c.name }] },
      });
      const steps = mine.filter((p) => p.PolicyType === "StepScaling").map((p) => p.StepScalingPolicyConfiguration);
      if (c.scaleToZero) {
        expect(steps).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ AdjustmentType: "ExactCapacity", StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }] }),
            expect.objectContaining({ AdjustmentType: "ExactCapacity", StepAdjustments: [{ MetricIntervalUpperBound: 0, ScalingAdjustment: 0 }] }),
          ]),
        );
      } else {
        expect(steps).toEqual([]);
      }
    }
  });

  it("puts the front behind an NLB: plaintext h2c on 9000 without a certificate, TCP target health, gRPC health in the container", () => {
    s.template.hasResourceProperties("AWS::ElasticLoadBalancingV2::LoadBalancer", { Type: "network", Scheme: "internal" });
    s.template.hasResourceProperties("AWS::ElasticLoadBalancingV2::Listener", { Port: 9000, Protocol: "TCP" });
    s.template.hasResourceProperties("AWS::ElasticLoadBalancingV2::TargetGroup", {
      Port: 9000,
      Protocol: "TCP",
      TargetType: "ip",
      HealthCheckProtocol: "TCP",
    });
    const front = idWhere("AWS::ECS::Service", "ServiceName", `${PREFIX}-front`);
    const td = taskDefinitionOf(s.resources[front].Properties!);
    const c = td.ContainerDefinitions[0];
    expect(c.Command).toEqual(["front"]);
    expect(c.HealthCheck.Command).toEqual(["CMD", "node", "dist/healthcheck.mjs"]);
    expect(c.Secrets.map((x: any) => x.Name)).toContain("AUTH_TOKEN");
    expect(s.resources[front].Properties!.LoadBalancers).toEqual([expect.objectContaining({ ContainerName: "front", ContainerPort: 9000 })]);
  });
});

describe("network and data", () => {
  /** Security groups allowed into `port` of the group `groupId` (ingress resources and inline rules). */
  function sourcesInto(groupId: string, port: number): string[] {
    const inline = (s.resources[groupId].Properties!.SecurityGroupIngress ?? []) as any[];
    const separate = ofType(s, "AWS::EC2::SecurityGroupIngress")
      .map(([, r]) => r.Properties!)
      .filter((r) => r.GroupId?.["Fn::GetAtt"]?.[0] === groupId);
    return [...inline, ...separate].map((r) => {
      expect(r.CidrIp).toBeUndefined();
      expect(r.FromPort).toBe(port);
      return r.SourceSecurityGroupId["Fn::GetAtt"][0] as string;
    });
  }

  it("lets only the front, the channel workers and the Lambdas reach MySQL and Valkey", () => {
    const db = s.resources[s.stack.getLogicalId(s.stack.data.dbSecurityGroup.node.defaultChild as any)];
    expect(db.Type).toBe("AWS::EC2::SecurityGroup");
    const expected = ["FrontSg", "WorkerSg", "FunctionSg"].map((n) => ofType(s, "AWS::EC2::SecurityGroup").find(([id]) => id.startsWith(n))![0]).sort();
    expect(sourcesInto(s.stack.getLogicalId(s.stack.data.dbSecurityGroup.node.defaultChild as any), 3306).sort()).toEqual(expected);
    expect(sourcesInto(s.stack.getLogicalId(s.stack.data.cacheSecurityGroup.node.defaultChild as any), 6379).sort()).toEqual(expected);
    // the stores sit in the isolated subnets; the docker-job tasks' group is not among the sources
    const dockerJobs = ofType(s, "AWS::EC2::SecurityGroup").find(([id]) => id.startsWith("DockerJobSg"))![0];
    expect(expected).not.toContain(dockerJobs);
  });

  it("encrypts queues, the job-state table, the database and the cache", () => {
    for (const [, q] of ofType(s, "AWS::SQS::Queue")) expect(q.Properties!.SqsManagedSseEnabled).toBe(true);
    s.template.hasResourceProperties("AWS::DynamoDB::Table", { SSESpecification: { SSEEnabled: true } });
    s.template.hasResourceProperties("AWS::RDS::DBInstance", { StorageEncrypted: true, Engine: "mysql", EngineVersion: Match.stringLikeRegexp("^8\\.") });
    s.template.hasResourceProperties("AWS::ElastiCache::ReplicationGroup", {
      AtRestEncryptionEnabled: true,
      TransitEncryptionEnabled: true,
      AuthToken: Match.anyValue(),
    });
    // credentials live in Secrets Manager, referenced (never inlined) by the database
    const db = ofType(s, "AWS::RDS::DBInstance")[0][1].Properties!;
    expect(JSON.stringify(db.MasterUserPassword)).toContain("resolve:secretsmanager");
  });

  it("creates the job-state table the runtime expects: on demand, TTL, point-in-time recovery, the status index", () => {
    const idx = JOB_STATE_TABLE.statusIndex;
    s.template.hasResourceProperties("AWS::DynamoDB::Table", {
      TableName: JOB_STATE_TABLE.name(PREFIX),
      KeySchema: [{ AttributeName: JOB_STATE_TABLE.partitionKey, KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
      TimeToLiveSpecification: { AttributeName: JOB_STATE_TABLE.ttlAttribute, Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      GlobalSecondaryIndexes: [
        {
          IndexName: idx.name,
          KeySchema: [
            { AttributeName: idx.partitionKey, KeyType: "HASH" },
            { AttributeName: idx.sortKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: [...idx.nonKeyAttributes] },
        },
      ],
    });
  });

  it("has endpoints for SQS, DynamoDB, ECR, CloudWatch Logs and Secrets Manager (and S3 for image layers)", () => {
    const names = ofType(s, "AWS::EC2::VPCEndpoint").map(([, e]) => JSON.stringify(e.Properties!.ServiceName));
    for (const svc of [".sqs", ".dynamodb", ".ecr.api", ".ecr.dkr", ".logs", ".secretsmanager", ".s3"]) {
      expect(names.some((n) => n.includes(svc))).toBe(true);
    }
  });
});

describe("security", () => {
  /** Every statement of every IAM policy in the template. */
  function statements(): { where: string; st: any }[] {
    const out: { where: string; st: any }[] = [];
    for (const [id, r] of Object.entries(s.resources)) {
      if (r.Type === "AWS::IAM::Policy") for (const st of r.Properties!.PolicyDocument.Statement) out.push({ where: id, st });
      if (r.Type === "AWS::IAM::Role") for (const p of r.Properties!.Policies ?? []) for (const st of p.PolicyDocument.Statement) out.push({ where: id, st });
    }
    return out;
  }
  const list = (v: unknown) => (Array.isArray(v) ? v : [v]);
  /** Actions AWS offers no resource-level permission for (so `Resource: "*"` is the only way to grant them). */
  const RESOURCELESS = new Set([
    "ecr:GetAuthorizationToken",
    "ecs:RegisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "ecs:DiscoverPollEndpoint",
    "cloudwatch:PutMetricData",
    "logs:CreateLogStream", // the ECS agent's, granted by the cluster for its own log calls
    "logs:PutLogEvents",
    "ecs:Poll", // conditioned on the cluster
    "ecs:StartTelemetrySession",
  ]);

  it("grants no `*` action, and `*` resources only to actions without resource-level permissions", () => {
    const all = statements();
    expect(all.length).toBeGreaterThan(20);
    for (const { where, st } of all) {
      for (const a of list(st.Action)) expect(a === "*" || /^[a-z0-9-]+:\*$/.test(a), `${where}: ${a}`).toBe(false);
      if (list(st.Resource).includes("*")) {
        for (const a of list(st.Action)) expect(RESOURCELESS.has(a), `${where}: ${a} on *`).toBe(true);
      }
    }
  });

  it("holds PutMetricData to the Jobworkerp namespace", () => {
    const put = statements().filter(({ st }) => list(st.Action).includes("cloudwatch:PutMetricData"));
    expect(put.length).toBeGreaterThan(0);
    for (const { st } of put) expect(st.Condition).toEqual({ StringEquals: { "cloudwatch:namespace": "Jobworkerp" } });
  });

  it("passes cdk-nag's AwsSolutions checks: every finding fixed or acknowledged with a reason next to its resource", () => {
    const report = new AwsSolutionsChecks().validateScope(s.stack);
    const findings = report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(", ")}`);
    expect(findings).toEqual([]);
    expect(report.success).toBe(true);
  });
});

describe("functions and observability", () => {
  it("runs the Lambdas of functions/ on the current Node runtime, the clock and metrics every minute, the recorder on every DLQ", () => {
    const fns = ofType(s, "AWS::Lambda::Function").map(([, f]) => f.Properties!);
    expect(fns).toHaveLength(3);
    for (const f of fns) expect(f).toMatchObject({ Runtime: "nodejs24.x", Handler: "index.handler" });
    const schedules = ofType(s, "AWS::Scheduler::Schedule").map(([, x]) => x.Properties!);
    expect(schedules.map((x) => [x.Name, x.ScheduleExpression, x.Target.Input]).sort()).toEqual([
      [`${PREFIX}-backlog-metrics`, "rate(1 minute)", '{"scheduledTime":"<aws.scheduler.scheduled-time>"}'],
      [`${PREFIX}-dispatch-clock`, "rate(1 minute)", '{"scheduledTime":"<aws.scheduler.scheduled-time>"}'],
    ]);
    const mappings = ofType(s, "AWS::Lambda::EventSourceMapping").map(([, m]) => m.Properties!);
    const dlqCount = channels.flatMap((c) => channelQueues(PREFIX, c)).length;
    expect(mappings).toHaveLength(dlqCount);
    for (const m of mappings) expect(m.FunctionResponseTypes).toEqual(["ReportBatchItemFailures"]);
  });

  it("keeps logs for a bounded time and draws one dashboard row per channel", () => {
    for (const [, g] of ofType(s, "AWS::Logs::LogGroup")) expect(g.Properties!.RetentionInDays).toBe(30);
    const body = JSON.stringify(ofType(s, "AWS::CloudWatch::Dashboard")[0][1].Properties!.DashboardBody);
    for (const c of channels) expect(body).toContain(`Channel \`${c.name}\``);
    for (const m of ["BacklogPerTask", "ApproximateAgeOfOldestMessage", "RunningTaskCount", "NumberOfMessagesReceived"]) expect(body).toContain(m);
  });
});
