// The VPC: public subnets (NLB, NAT), private subnets with egress (services, Lambdas, GPU instances) and isolated
// subnets (database, cache). Endpoints keep the heavy AWS traffic off the NAT: SQS, DynamoDB and S3 (gateway: free),
// ECR, CloudWatch Logs, Secrets Manager (interface: ~$7.30 a month each per AZ). The NAT stays for the light
// control-plane calls (ECS, CloudWatch metrics) and for what jobs fetch from the Internet (HTTP runners, public
// images, model downloads).
import { RemovalPolicy } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { justify } from "../nag.js";

export interface NetworkProps {
  availabilityZones: string[];
  natGateways: number;
  /** Interface endpoints (~$73 a month in two AZs); without them that traffic takes the NAT. */
  interfaceEndpoints: boolean;
  logRetentionDays: number;
}

const INTERFACE_ENDPOINTS: [string, ec2.InterfaceVpcEndpointAwsService][] = [
  ["Sqs", ec2.InterfaceVpcEndpointAwsService.SQS],
  ["EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR],
  ["EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
  ["Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
  ["SecretsManager", ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
];

export class Network extends Construct {
  readonly vpc: ec2.Vpc;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, "Vpc", {
      ipAddresses: ec2.IpAddresses.cidr("10.40.0.0/16"),
      availabilityZones: props.availabilityZones,
      natGateways: props.natGateways,
      subnetConfiguration: [
        { name: "public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: "private", subnetType: props.natGateways > 0 ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
        { name: "data", subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      gatewayEndpoints: {
        DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 }, // ECR image layers
      },
    });
    const flowLogs = new logs.LogGroup(this, "FlowLogs", { retention: props.logRetentionDays as logs.RetentionDays, removalPolicy: RemovalPolicy.DESTROY });
    this.vpc.addFlowLog("FlowLog", { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.REJECT });
    for (const [name, service] of props.interfaceEndpoints ? INTERFACE_ENDPOINTS : []) {
      const endpoint = this.vpc.addInterfaceEndpoint(name, { service, subnets: { subnetGroupName: "private" }, privateDnsEnabled: true });
      justify(endpoint, [
        { id: "AwsSolutions-EC23", reason: "HTTPS to the endpoint is open to the VPC's own CIDR only (a reference cdk-nag cannot resolve, hence the finding)." },
      ]);
    }
  }

  /** Where services, Lambdas and GPU instances run. */
  get appSubnets(): ec2.SubnetSelection {
    return { subnetGroupName: "private" };
  }

  get dataSubnets(): ec2.SubnetSelection {
    return { subnetGroupName: "data" };
  }
}
