// The whole AWS shape in one stack of constructs (network, data, queues, compute, functions, observability), all
// derived from the DeploymentConfig and the channels file: a channel added to the file gets its queues, service,
// scaling, alarms and dashboard row without a change here.
import { CfnOutput, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import type { DeploymentConfig } from "../config.js";
import { ChannelWorker } from "../constructs/channel-worker.js";
import { Data } from "../constructs/data.js";
import { Front } from "../constructs/front.js";
import { Functions } from "../constructs/functions.js";
import { GpuCapacity } from "../constructs/gpu-capacity.js";
import { workerImage } from "../constructs/image.js";
import { Network } from "../constructs/network.js";
import { AlarmTopic, Dashboard } from "../constructs/observability.js";
import { ChannelQueues } from "../constructs/queues.js";
import { Runtime } from "../constructs/runtime.js";
import { justify, nagValue } from "../nag.js";
import { DEFAULT_CHANNEL } from "../../worker-container/src/core/workers.js";

export interface JobworkerpStackProps extends StackProps {
  config: DeploymentConfig;
}

/** Construct ids and AWS names accept only some characters: `docker-gpu` → `docker-gpu`, `a.b` → `a-b`. */
function safeName(channel: string): string {
  return channel.replace(/[^A-Za-z0-9-]/g, "-");
}

export class JobworkerpStack extends Stack {
  readonly network: Network;
  readonly data: Data;
  readonly front: Front;
  readonly workers: ChannelWorker[] = [];
  readonly queues: ChannelQueues[] = [];
  readonly functions: Functions;
  readonly cluster: ecs.Cluster;

  constructor(scope: Construct, id: string, props: JobworkerpStackProps) {
    super(scope, id, props);
    const cfg = props.config;
    const prefix = cfg.resourcePrefix;

    this.network = new Network(this, "Network", {
      availabilityZones: cfg.availabilityZones,
      natGateways: cfg.natGateways,
      interfaceEndpoints: cfg.interfaceEndpoints,
      logRetentionDays: cfg.logRetentionDays,
    });
    const { vpc } = this.network;
    this.data = new Data(this, "Data", { vpc, subnets: this.network.dataSubnets, ...cfg });

    this.cluster = new ecs.Cluster(this, "Cluster", { vpc, clusterName: prefix, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    const runtime = new Runtime({
      resourcePrefix: prefix,
      clusterName: this.cluster.clusterName,
      channels: cfg.channels,
      dbHost: this.data.dbHost,
      dbPort: this.data.dbPort,
      dbSecret: this.data.dbSecret,
      redisUrl: this.data.redisUrl,
      cacheAuthToken: this.data.cacheAuthToken,
      table: this.data.table,
    });
    const image = workerImage();
    const alarms = new AlarmTopic(this, "Alarms", { email: cfg.alarmEmail });

    // security groups: the stores admit the front, the workers and the VPC Lambdas, nothing else
    const frontSg = new ec2.SecurityGroup(this, "FrontSg", { vpc, description: "jobworkerp front tasks" });
    const workerSg = new ec2.SecurityGroup(this, "WorkerSg", { vpc, description: "jobworkerp channel worker tasks" });
    const functionSg = new ec2.SecurityGroup(this, "FunctionSg", { vpc, description: "jobworkerp Lambdas (dispatch, DLQ recorder)" });
    const gpuInstanceSg = new ec2.SecurityGroup(this, "GpuInstanceSg", { vpc, description: "GPU container instances (tasks use their own groups)" });
    this.data.allowFrom(frontSg, "the front");
    this.data.allowFrom(workerSg, "the channel workers");
    this.data.allowFrom(functionSg, "the Lambdas");

    // the DOCKER runner's ECS backend: job containers get no route to the stores and only this role
    const dockerJobSg = new ec2.SecurityGroup(this, "DockerJobSg", { vpc, description: "containers the DOCKER runner starts as ECS tasks" });
    const dockerJobLogs = new logs.LogGroup(this, "DockerJobLogs", {
      logGroupName: `/${prefix}/docker-jobs`,
      retention: cfg.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const dockerJobExecutionRole = new iam.Role(this, "DockerJobExecutionRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "Pulls the images of DOCKER runner jobs and writes their logs",
    });
    dockerJobLogs.grantWrite(dockerJobExecutionRole);
    dockerJobExecutionRole.addToPolicy(new iam.PolicyStatement({ sid: "EcrLogin", actions: ["ecr:GetAuthorizationToken"], resources: ["*"] }));
    const accountRepositories = this.formatArn({ service: "ecr", resource: "repository", resourceName: "*" });
    dockerJobExecutionRole.addToPolicy(
      new iam.PolicyStatement({
        sid: "PullAccountImages",
        actions: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
        resources: [accountRepositories],
      }),
    );
    justify(dockerJobExecutionRole, [
      {
        id: "AwsSolutions-IAM5",
        reason: "Jobs name their image at run time: pulls are allowed from this account's ECR repositories (ecr:GetAuthorizationToken has no resource-level permissions); log writes are limited to the job log group's streams.",
        appliesTo: ["Resource::*", `Resource::${nagValue(this, accountRepositories)}`, `Resource::${nagValue(this, dockerJobLogs.logGroupArn)}:*`],
      },
    ]);
    const dockerJobs = {
      subnetIds: vpc.selectSubnets(this.network.appSubnets).subnetIds,
      securityGroupId: dockerJobSg.securityGroupId,
      executionRole: dockerJobExecutionRole,
      logGroup: dockerJobLogs,
    };

    this.front = new Front(this, "Front", {
      resourcePrefix: prefix,
      cluster: this.cluster,
      vpc,
      image,
      runtime,
      securityGroup: frontSg,
      subnets: this.network.appSubnets,
      ...cfg.front,
      logRetentionDays: cfg.logRetentionDays,
      certificateArn: cfg.certificateArn,
      internetFacing: cfg.internetFacing,
      clientCidrs: cfg.clientCidrs,
    });

    for (const channel of cfg.channels) {
      const name = safeName(channel.name === DEFAULT_CHANNEL ? "default" : channel.name);
      const queues = new ChannelQueues(this, `Queues-${name}`, {
        resourcePrefix: prefix,
        channel,
        oldestMessageAlarmSeconds: cfg.oldestMessageAlarmSeconds,
        alarmAction: alarms.action,
      });
      const gpuCapacity =
        channel.gpu > 0
          ? new GpuCapacity(this, `Gpu-${name}`, { cluster: this.cluster, vpc, subnets: this.network.appSubnets, securityGroup: gpuInstanceSg, channel, name: `${prefix}-${name}-gpu` })
          : undefined;
      const worker = new ChannelWorker(this, `Worker-${name}`, {
        resourcePrefix: prefix,
        channel,
        cluster: this.cluster,
        image,
        runtime,
        queues,
        securityGroup: workerSg,
        subnets: this.network.appSubnets,
        logRetentionDays: cfg.logRetentionDays,
        dockerJobs,
        gpuCapacity,
      });
      this.queues.push(queues);
      this.workers.push(worker);
    }

    this.functions = new Functions(this, "Functions", {
      resourcePrefix: prefix,
      runtime,
      vpc,
      subnets: this.network.appSubnets,
      securityGroup: functionSg,
      channelsFile: cfg.channelsFile,
      dlqs: this.queues.flatMap((q) => q.dlqs),
      dbSecret: this.data.dbSecret,
      cacheAuthToken: this.data.cacheAuthToken,
      logRetentionDays: cfg.logRetentionDays,
    });

    new Dashboard(this, "Dashboard", {
      name: prefix,
      clusterName: this.cluster.clusterName,
      channels: this.workers.map((worker, i) => ({ worker, queues: this.queues[i] })),
      frontService: this.front.service,
      functions: [this.functions.dispatch, this.functions.dlqRecorder, this.functions.metrics],
    });

    new CfnOutput(this, "GrpcEndpoint", {
      description: "gRPC address of the front (h2c without a certificate, TLS with one)",
      value: `${this.front.loadBalancer.loadBalancerDnsName}:${this.front.listenerPort}`,
    });
    new CfnOutput(this, "AuthTokenSecretArn", { description: "Secret holding the token clients send as jobworkerp-auth", value: this.front.authToken.secretArn });
    new CfnOutput(this, "ClusterName", { value: this.cluster.clusterName });
    new CfnOutput(this, "JobStateTable", { value: this.data.table.tableName });
    new CfnOutput(this, "DatabaseSecretArn", { value: this.data.dbSecret.secretArn });
    new CfnOutput(this, "DashboardName", { value: prefix });
  }
}
