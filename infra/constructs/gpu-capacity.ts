// EC2 capacity of one GPU channel: an Auto Scaling group of the ECS GPU-optimised AMI (Amazon Linux 2023, via
// its public SSM parameter: no lookup at synth) built from a launch template, as an ECS capacity provider with
// managed scaling, so the instances follow the channel's tasks (down to none for a channel that sleeps).
import { Duration } from "aws-cdk-lib";
import * as autoscaling from "aws-cdk-lib/aws-autoscaling";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";
import type { ChannelSpec } from "../../worker-container/src/core/channel_config.js";
import { justify } from "../nag.js";

export const DEFAULT_GPU_INSTANCE_TYPE = "g5.xlarge";

export interface GpuCapacityProps {
  cluster: ecs.Cluster;
  vpc: ec2.IVpc;
  subnets: ec2.SubnetSelection;
  /** Group of the instances themselves (the tasks have their own, awsvpc). */
  securityGroup: ec2.ISecurityGroup;
  channel: ChannelSpec;
  /** Capacity provider name: `<prefix>-<channel>-gpu` (must not start with aws/ecs/fargate). */
  name: string;
}

export class GpuCapacity extends Construct {
  readonly provider: ecs.AsgCapacityProvider;
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;

  constructor(scope: Construct, id: string, props: GpuCapacityProps) {
    super(scope, id);
    const role = new iam.Role(this, "InstanceRole", {
      assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
      description: `ECS container instances of the ${props.channel.name} channel`,
    });
    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      "echo ECS_ENABLE_GPU_SUPPORT=true >> /etc/ecs/ecs.config",
      // tasks (awsvpc) must not borrow the instance role through the metadata service
      "echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config",
    );
    const launchTemplate = new ec2.LaunchTemplate(this, "LaunchTemplate", {
      machineImage: ecs.EcsOptimizedImage.amazonLinux2023(ecs.AmiHardwareType.GPU),
      instanceType: new ec2.InstanceType(props.channel.instanceType ?? DEFAULT_GPU_INSTANCE_TYPE),
      userData,
      role,
      securityGroup: props.securityGroup,
      requireImdsv2: true,
      detailedMonitoring: true,
      // GPU images (CUDA, model servers) are large: room for a few of them
      blockDevices: [{ deviceName: "/dev/xvda", volume: ec2.BlockDeviceVolume.ebs(200, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) }],
    });
    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, "Asg", {
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      launchTemplate,
      minCapacity: 0,
      // one task per instance (a task takes the GPU); one spare for rolling deployments
      maxCapacity: props.channel.maxTasks + 1,
      cooldown: Duration.minutes(5),
      healthChecks: autoscaling.HealthChecks.ec2({ gracePeriod: Duration.minutes(5) }),
    });
    this.provider = new ecs.AsgCapacityProvider(this, "Provider", {
      capacityProviderName: props.name,
      autoScalingGroup: this.autoScalingGroup,
      enableManagedScaling: true,
      enableManagedTerminationProtection: true,
      targetCapacityPercent: 100,
      machineImageType: ecs.MachineImageType.AMAZON_LINUX_2, // user data style of the ECS AMIs (AL2023 too)
    });
    props.cluster.addAsgCapacityProvider(this.provider);
    justify(this.autoScalingGroup, [
      { id: "AwsSolutions-AS3", reason: "ECS managed scaling drives this group; scaling activity is visible in the ECS service events and the dashboard, so no SNS notifications." },
    ]);
    justify(role, [
      {
        id: "AwsSolutions-IAM5",
        reason:
          "The ECS agent's own calls (granted by the cluster): ecs:Submit* (state changes) on this cluster only; ecs:Poll/StartTelemetrySession limited to this cluster by condition; ecs:DiscoverPollEndpoint, ecr:GetAuthorizationToken and the agent's log calls have no resource-level permissions.",
        appliesTo: ["Resource::*", "Action::ecs:Submit*"],
      },
    ]);
  }
}
