// The gRPC front: a Fargate service running the image's `front` role behind a Network Load Balancer. gRPC is
// HTTP/2: the NLB passes TCP through (h2c, port 9000) or, given a certificate, terminates TLS on 443 and offers h2
// by ALPN. NLB health checks cannot speak gRPC, so the target group checks TCP while the container's own health
// check asks grpc.health.v1 (dist/healthcheck.mjs) and ECS replaces a task that stops SERVING. Clients must send
// the generated AUTH_TOKEN (Secrets Manager) as `jobworkerp-auth`.
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import { justify } from "../nag.js";
import { fargateSizeProblem } from "./fargate-size.js";
import { GRPC_PORT, type Runtime } from "./runtime.js";

export interface FrontProps {
  resourcePrefix: string;
  cluster: ecs.ICluster;
  vpc: ec2.IVpc;
  image: ecs.ContainerImage;
  runtime: Runtime;
  securityGroup: ec2.SecurityGroup;
  subnets: ec2.SubnetSelection;
  cpu: number;
  memoryMiB: number;
  minTasks: number;
  maxTasks: number;
  logRetentionDays: number;
  certificateArn?: string;
  internetFacing: boolean;
  /** Who may reach the listener (default: the VPC's CIDR). */
  clientCidrs: string[];
}

export const FRONT_CONTAINER = "front";

export class Front extends Construct {
  readonly service: ecs.FargateService;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly listener: elbv2.NetworkListener;
  readonly listenerPort: number;
  readonly authToken: secretsmanager.Secret;
  readonly taskRole: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: FrontProps) {
    super(scope, id);
    const problem = fargateSizeProblem(props.cpu, props.memoryMiB);
    if (problem) throw new Error(`front: ${problem}`);
    this.authToken = new secretsmanager.Secret(this, "AuthToken", {
      secretName: `${props.resourcePrefix}/auth-token`,
      description: "Token clients send as the jobworkerp-auth header (AUTH_TOKEN of the front)",
      generateSecretString: { excludePunctuation: true, passwordLength: 48 },
    });
    justify(this.authToken, [
      { id: "AwsSolutions-SMG4", reason: "Clients hold this token: rotating it is a coordinated change (new value, then a new deployment of the front), not an automatic one." },
    ]);
    this.logGroup = new logs.LogGroup(this, "Logs", {
      logGroupName: `/${props.resourcePrefix}/front`,
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.taskRole = new iam.Role(this, "TaskRole", { assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"), description: "jobworkerp gRPC front" });
    props.runtime.grantEnqueue(this, this.taskRole);

    const task = new ecs.FargateTaskDefinition(this, "Task", {
      cpu: props.cpu,
      memoryLimitMiB: props.memoryMiB,
      taskRole: this.taskRole,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    task.addContainer(FRONT_CONTAINER, {
      image: props.image,
      command: ["front"],
      environment: { ...props.runtime.environment(this), GRPC_ADDR: `0.0.0.0:${GRPC_PORT}` },
      secrets: { ...props.runtime.containerSecrets(), AUTH_TOKEN: ecs.Secret.fromSecretsManager(this.authToken) },
      portMappings: [{ containerPort: GRPC_PORT, protocol: ecs.Protocol.TCP }],
      healthCheck: {
        command: ["CMD", "node", "dist/healthcheck.mjs"],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: "front" }),
      stopTimeout: Duration.seconds(30),
    });
    justify(task, [
      { id: "AwsSolutions-ECS2", reason: "The environment holds only non-secret settings (names, endpoints); passwords and tokens come from Secrets Manager as ECS secrets." },
      { id: "AwsSolutions-IAM5", reason: "Execution role: ecr:GetAuthorizationToken (pulling the image asset) has no resource-level permissions.", appliesTo: ["Resource::*"] },
    ]);
    this.service = new ecs.FargateService(this, "Service", {
      serviceName: `${props.resourcePrefix}-front`,
      cluster: props.cluster,
      taskDefinition: task,
      desiredCount: props.minTasks,
      securityGroups: [props.securityGroup],
      vpcSubnets: props.subnets,
      circuitBreaker: { rollback: true },
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      healthCheckGracePeriod: Duration.seconds(60),
    });
    const scaling = this.service.autoScaleTaskCount({ minCapacity: props.minTasks, maxCapacity: props.maxTasks });
    scaling.scaleOnCpuUtilization("Cpu", { targetUtilizationPercent: 60, scaleOutCooldown: Duration.minutes(1), scaleInCooldown: Duration.minutes(5) });

    const tls = props.certificateArn !== undefined;
    this.listenerPort = tls ? 443 : GRPC_PORT;
    const nlbSg = new ec2.SecurityGroup(this, "NlbSg", { vpc: props.vpc, allowAllOutbound: false, description: "gRPC clients to the NLB of the front" });
    const cidrs = props.clientCidrs.length ? props.clientCidrs : [props.internetFacing ? "0.0.0.0/0" : props.vpc.vpcCidrBlock];
    for (const cidr of cidrs) nlbSg.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(this.listenerPort), "gRPC clients");
    if (!props.clientCidrs.length && !props.internetFacing) {
      justify(nlbSg, [{ id: "AwsSolutions-EC23", reason: "Open to the VPC's own CIDR only (a reference cdk-nag cannot resolve, hence the finding)." }]);
    }
    if (cidrs.includes("0.0.0.0/0")) {
      justify(nlbSg, [{ id: "AwsSolutions-EC23", reason: "internetFacing was asked for without clientCidrs: a public gRPC endpoint, TLS-only (a certificate is required) and token-authenticated." }]);
    }
    props.securityGroup.addIngressRule(nlbSg, ec2.Port.tcp(GRPC_PORT), "gRPC from the NLB");
    nlbSg.addEgressRule(props.securityGroup, ec2.Port.tcp(GRPC_PORT), "to the front tasks");

    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, "Nlb", {
      vpc: props.vpc,
      internetFacing: props.internetFacing,
      vpcSubnets: props.internetFacing ? { subnetType: ec2.SubnetType.PUBLIC } : props.subnets,
      securityGroups: [nlbSg],
      crossZoneEnabled: true,
    });
    justify(this.loadBalancer, [
      { id: "AwsSolutions-ELB2", reason: "NLB access logs record only TLS listeners and need a log bucket; connection-level visibility comes from VPC flow logs and the front's own logs." },
    ]);
    this.listener = this.loadBalancer.addListener("Grpc", {
      port: this.listenerPort,
      ...(tls
        ? {
            protocol: elbv2.Protocol.TLS,
            certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn!)],
            sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
            alpnPolicy: elbv2.AlpnPolicy.HTTP2_ONLY,
          }
        : { protocol: elbv2.Protocol.TCP }),
    });
    this.listener.addTargets("Front", {
      port: GRPC_PORT,
      protocol: elbv2.Protocol.TCP,
      targets: [this.service.loadBalancerTarget({ containerName: FRONT_CONTAINER, containerPort: GRPC_PORT })],
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        protocol: elbv2.Protocol.TCP,
        port: String(GRPC_PORT),
        interval: Duration.seconds(10),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
    });
  }
}
