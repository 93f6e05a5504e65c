// One channel's workers: an ECS service named workerServiceName(prefix, channel) (the runtime wakes it by that
// name) running the image's `worker` role for the channel (and its sub-queues). Channels without GPUs run on
// Fargate; GPU channels run on their own EC2 capacity provider with GPU resource requirements, the instance's
// Docker socket for the DOCKER runner when the channel uses the local engine, and an optional OpenAI-compatible
// model server beside the worker (same task, reached on localhost).
// Autoscaling: target tracking on BacklogPerTask ((visible + in-flight messages) / running tasks, published each
// minute by the metrics Lambda) within the channel's min/max; a channel that may sleep is woken by an alarm
// (backlog while no task is wanted) and put back to sleep after a quiet quarter of an hour.
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as appscaling from "aws-cdk-lib/aws-applicationautoscaling";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cwactions from "aws-cdk-lib/aws-cloudwatch-actions";
import type * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { DIMENSION, METRIC, METRICS_NAMESPACE } from "../../worker-container/src/adapters/aws/backlog_metrics.js";
import { workerServiceName } from "../../worker-container/src/adapters/aws/resources.js";
import type { ChannelSpec } from "../../worker-container/src/core/channel_config.js";
import { DEFAULT_CHANNEL } from "../../worker-container/src/core/workers.js";
import { justify, nagValue } from "../nag.js";
import { fargateSizeProblem } from "./fargate-size.js";
import type { GpuCapacity } from "./gpu-capacity.js";
import type { ChannelQueues } from "./queues.js";
import type { Runtime } from "./runtime.js";

/** Where the DOCKER runner's ECS backend runs job containers (Fargate channels, and GPU channels without a local engine). */
export interface DockerJobTarget {
  subnetIds: string[];
  securityGroupId: string;
  executionRole: iam.IRole;
  logGroup: logs.ILogGroup;
}

export interface ChannelWorkerProps {
  resourcePrefix: string;
  channel: ChannelSpec;
  cluster: ecs.Cluster;
  image: ecs.ContainerImage;
  runtime: Runtime;
  queues: ChannelQueues;
  securityGroup: ec2.ISecurityGroup;
  subnets: ec2.SubnetSelection;
  logRetentionDays: number;
  dockerJobs: DockerJobTarget;
  /** Set for GPU channels (gpu > 0). */
  gpuCapacity?: GpuCapacity;
}

const DOCKER_SOCKET = "/var/run/docker.sock";
/** The worker's share of a GPU task that also runs a model server (the server gets the rest). */
const WORKER_SHARE = { cpu: 1024, memoryMiB: 2048 };

export class ChannelWorker extends Construct {
  readonly channel: ChannelSpec;
  readonly service: ecs.FargateService | ecs.Ec2Service;
  readonly serviceName: string;
  readonly taskRole: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly scaling: appscaling.ScalableTarget;

  constructor(scope: Construct, id: string, props: ChannelWorkerProps) {
    super(scope, id);
    const spec = props.channel;
    this.channel = spec;
    this.serviceName = workerServiceName(props.resourcePrefix, spec.name);
    this.logGroup = new logs.LogGroup(this, "Logs", {
      logGroupName: `/${props.resourcePrefix}/worker/${spec.name}`,
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.taskRole = new iam.Role(this, "TaskRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: `jobworkerp workers of the ${spec.name} channel`,
    });
    this.grantWorker(props);

    const gpu = spec.gpu > 0;
    if (gpu !== !!props.gpuCapacity) throw new Error(`channel '${spec.name}': a GPU channel needs GPU capacity and only a GPU channel gets it`);
    const useLocalDocker = gpu && !!spec.localDocker;
    const environment: Record<string, string> = {
      ...props.runtime.environment(this),
      WORKER_CHANNELS: spec.name,
      WORKER_CHANNEL_CONCURRENCIES: String(spec.concurrency),
      ...(spec.name === DEFAULT_CHANNEL ? {} : { WORKER_DEFAULT_CHANNEL_DISABLED: "true" }),
      ...(useLocalDocker ? { DOCKER_HOST: `unix://${DOCKER_SOCKET}` } : this.ecsDockerEnvironment(props)),
    };
    const logging = ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: "worker" });
    const worker: ecs.ContainerDefinitionOptions = {
      image: props.image,
      command: ["worker"],
      environment,
      secrets: props.runtime.containerSecrets(),
      logging,
      stopTimeout: Duration.seconds(120), // in-flight jobs finish (or their leases lapse and they run elsewhere)
    };

    let taskDefinition: ecs.TaskDefinition;
    if (!gpu) {
      const problem = fargateSizeProblem(spec.cpu, spec.memoryMiB);
      if (problem) throw new Error(`channel '${spec.name}': ${problem}`);
      const td = new ecs.FargateTaskDefinition(this, "Task", {
        cpu: spec.cpu,
        memoryLimitMiB: spec.memoryMiB,
        taskRole: this.taskRole,
        runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
      });
      td.addContainer("worker", worker);
      taskDefinition = td;
      this.service = new ecs.FargateService(this, "Service", {
        serviceName: this.serviceName,
        cluster: props.cluster,
        taskDefinition: td,
        desiredCount: spec.minTasks,
        securityGroups: [props.securityGroup],
        vpcSubnets: props.subnets,
        circuitBreaker: { rollback: true },
        minHealthyPercent: 100,
        maxHealthyPercent: 200,
      });
    } else {
      const td = new ecs.Ec2TaskDefinition(this, "Task", { networkMode: ecs.NetworkMode.AWS_VPC, taskRole: this.taskRole });
      const server = spec.modelServer;
      const workerCpu = server ? WORKER_SHARE.cpu : spec.cpu;
      const workerMemory = server ? WORKER_SHARE.memoryMiB : spec.memoryMiB;
      if (server && (spec.cpu <= WORKER_SHARE.cpu || spec.memoryMiB <= WORKER_SHARE.memoryMiB)) {
        throw new Error(`channel '${spec.name}': with a model server the task needs more than ${WORKER_SHARE.cpu} cpu and ${WORKER_SHARE.memoryMiB} MiB (the worker's share)`);
      }
      const container = td.addContainer("worker", {
        ...worker,
        cpu: workerCpu,
        memoryReservationMiB: workerMemory,
        // the GPU goes to whoever computes on it: the model server when there is one, else the worker's jobs
        gpuCount: server ? undefined : spec.gpu,
        // the host's Docker socket is root on the instance whatever the container user, and its group id differs
        // between AMIs: a worker that drives it runs as root (on instances that serve only this channel)
        user: useLocalDocker ? "0" : undefined,
      });
      if (useLocalDocker) {
        td.addVolume({ name: "docker-socket", host: { sourcePath: DOCKER_SOCKET } });
        container.addMountPoints({ sourceVolume: "docker-socket", containerPath: DOCKER_SOCKET, readOnly: false });
      }
      if (server) {
        const sidecar = td.addContainer("model-server", {
          image: ecs.ContainerImage.fromRegistry(server.image),
          cpu: spec.cpu - WORKER_SHARE.cpu,
          memoryReservationMiB: spec.memoryMiB - WORKER_SHARE.memoryMiB,
          gpuCount: spec.gpu,
          portMappings: [{ containerPort: server.port }],
          logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: "model-server" }),
        });
        container.addContainerDependencies({ container: sidecar, condition: ecs.ContainerDependencyCondition.START });
      }
      taskDefinition = td;
      this.service = new ecs.Ec2Service(this, "Service", {
        serviceName: this.serviceName,
        cluster: props.cluster,
        taskDefinition: td,
        desiredCount: spec.minTasks,
        securityGroups: [props.securityGroup],
        vpcSubnets: props.subnets,
        capacityProviderStrategies: [{ capacityProvider: props.gpuCapacity!.provider.capacityProviderName, weight: 1 }],
        circuitBreaker: { rollback: true },
        minHealthyPercent: 100,
        maxHealthyPercent: 200,
      });
    }
    justify(taskDefinition, [
      { id: "AwsSolutions-ECS2", reason: "The environment holds only non-secret settings (names, endpoints, channel); passwords and tokens come from Secrets Manager as ECS secrets." },
      { id: "AwsSolutions-IAM5", reason: "Execution role: ecr:GetAuthorizationToken (pulling the image asset) has no resource-level permissions.", appliesTo: ["Resource::*"] },
    ]);
    this.scaling = this.addScaling(props);
  }

  /** The DOCKER runner's ECS backend: job containers run as tasks of their own (no Docker socket on Fargate). */
  private ecsDockerEnvironment(props: ChannelWorkerProps): Record<string, string> {
    return {
      DOCKER_BACKEND: "ecs",
      ECS_SUBNETS: props.dockerJobs.subnetIds.join(","),
      ECS_SECURITY_GROUPS: props.dockerJobs.securityGroupId,
      ECS_TASK_EXECUTION_ROLE_ARN: props.dockerJobs.executionRole.roleArn,
      ECS_LOG_GROUP: props.dockerJobs.logGroup.logGroupName,
      ...(props.gpuCapacity ? { ECS_GPU_CAPACITY_PROVIDER: props.gpuCapacity.provider.capacityProviderName } : {}),
    };
  }

  private grantWorker(props: ChannelWorkerProps): void {
    const role = this.taskRole;
    // jobs of this channel: lease, extend, ack (sending and job state: runtime.grantEnqueue)
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: "LeaseChannelJobs",
        actions: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
        resources: props.queues.queues.map((q) => q.queueArn),
      }),
    );
    props.runtime.grantEnqueue(this, role);
    if (props.channel.gpu > 0 && props.channel.localDocker) return;
    const stack = props.cluster.stack;
    const familyPrefix = `${props.resourcePrefix}-docker-`;
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: "DockerJobTaskDefinitions",
        // these two actions have no resource-level permissions
        actions: ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"],
        resources: ["*"],
      }),
    );
    const families = stack.formatArn({ service: "ecs", resource: "task-definition", resourceName: `${familyPrefix}*` });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: "RunDockerJobTasks",
        actions: ["ecs:RunTask"],
        resources: [families],
        conditions: { ArnEquals: { "ecs:cluster": props.cluster.clusterArn } },
      }),
    );
    const clusterTasks = props.cluster.arnForTasks("*");
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: "WatchDockerJobTasks",
        actions: ["ecs:DescribeTasks", "ecs:StopTask"],
        resources: [clusterTasks],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: "PassDockerJobExecutionRole",
        actions: ["iam:PassRole"],
        resources: [props.dockerJobs.executionRole.roleArn],
        conditions: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({ sid: "ReadDockerJobLogs", actions: ["logs:GetLogEvents"], resources: [`${props.dockerJobs.logGroup.logGroupArn}`] }),
    );
    justify(role, [
      {
        id: "AwsSolutions-IAM5",
        reason:
          "DOCKER runner (ECS backend): RegisterTaskDefinition/DescribeTaskDefinition have no resource-level permissions; RunTask is limited to the runner's task-definition families and to this cluster (condition); DescribeTasks/StopTask to this cluster's tasks.",
        appliesTo: ["Resource::*", `Resource::${nagValue(this, families)}`, `Resource::${nagValue(this, clusterTasks)}`],
      },
    ]);
  }

  private addScaling(props: ChannelWorkerProps): appscaling.ScalableTarget {
    const spec = props.channel;
    const target = new appscaling.ScalableTarget(this, "Scaling", {
      serviceNamespace: appscaling.ServiceNamespace.ECS,
      resourceId: `service/${props.cluster.clusterName}/${this.service.serviceName}`,
      scalableDimension: "ecs:service:DesiredCount",
      minCapacity: spec.minTasks,
      maxCapacity: spec.maxTasks,
    });
    const channelMetric = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName, dimensionsMap: { [DIMENSION.channel]: spec.name }, statistic, period: Duration.minutes(1) });
    target.scaleToTrackMetric("BacklogPerTask", {
      customMetric: channelMetric(METRIC.backlogPerTask, "Average"),
      targetValue: spec.targetBacklogPerTask,
      scaleOutCooldown: Duration.minutes(1),
      scaleInCooldown: Duration.minutes(5),
    });
    if (spec.minTasks === 0) this.addSleepAndWake(target, channelMetric(METRIC.backlog, "Maximum"), props);
    return target;
  }

  /**
   * Target tracking cannot leave 0 tasks (it scales in proportion to the running count) and needs data to scale
   * in: a wake alarm sets 1 task when jobs wait and no task is wanted, a sleep alarm sets 0 after 15 quiet minutes.
   */
  private addSleepAndWake(target: appscaling.ScalableTarget, backlog: cloudwatch.Metric, props: ChannelWorkerProps): void {
    const desired = new cloudwatch.Metric({
      namespace: "ECS/ContainerInsights",
      metricName: "DesiredTaskCount",
      dimensionsMap: { ClusterName: props.cluster.clusterName, ServiceName: this.serviceName },
      statistic: "Maximum",
      period: Duration.minutes(1),
    });
    const wake = new appscaling.StepScalingAction(this, "Wake", {
      scalingTarget: target,
      adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
      cooldown: Duration.minutes(props.channel.gpu > 0 ? 10 : 2),
      metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
    });
    wake.addAdjustment({ lowerBound: 0, adjustment: 1 });
    new cloudwatch.MathExpression({
      expression: "IF(backlog > 0 AND FILL(desired, 0) == 0, 1, 0)",
      usingMetrics: { backlog, desired },
      period: Duration.minutes(1),
      label: `${props.channel.name}: jobs waiting, no task`,
    })
      .createAlarm(this, "WakeAlarm", {
        alarmDescription: `Jobs wait on ${props.channel.name} while its service sleeps: start one task`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      })
      .addAlarmAction(new cwactions.ApplicationScalingAction(wake));

    const sleep = new appscaling.StepScalingAction(this, "Sleep", {
      scalingTarget: target,
      adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
      cooldown: Duration.minutes(5),
      metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
    });
    sleep.addAdjustment({ upperBound: 0, adjustment: 0 });
    backlog
      .createAlarm(this, "SleepAlarm", {
        alarmDescription: `No job waiting or running on ${props.channel.name} for 15 minutes: stop its tasks`,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 15,
        // no data is not "idle": a metrics outage must not stop running work
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      })
      .addAlarmAction(new cwactions.ApplicationScalingAction(sleep));
  }
}
