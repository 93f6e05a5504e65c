// The Lambdas of functions/ (bundled offline by NodejsFunction with the local esbuild) and what drives them:
//   dispatch      EventBridge Scheduler, every minute: moves due scheduled/periodic jobs from MySQL into SQS
//   metrics       EventBridge Scheduler, every minute: Backlog and BacklogPerTask per channel (autoscaling signal)
//   dlq_recorder  every dead-letter queue (partial batch failures): records the dead job's failure
// dispatch and dlq_recorder reach MySQL/Valkey from the private subnets; metrics needs only AWS APIs.
import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import type * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import * as scheduler from "aws-cdk-lib/aws-scheduler";
import * as targets from "aws-cdk-lib/aws-scheduler-targets";
import type * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { METRICS_NAMESPACE } from "../../worker-container/src/adapters/aws/backlog_metrics.js";
import { CLOCK_EVENT_INPUT, SCHEDULE_RATE, scheduleNames } from "../../worker-container/src/adapters/aws/schedules.js";
import { REPO_ROOT } from "../config.js";
import { justify, nagValue } from "../nag.js";
import { DLQ_RECORDER_TIMEOUT_SECONDS } from "./queues.js";
import type { Runtime } from "./runtime.js";

export interface FunctionsProps {
  resourcePrefix: string;
  runtime: Runtime;
  vpc: ec2.IVpc;
  subnets: ec2.SubnetSelection;
  securityGroup: ec2.ISecurityGroup;
  /** The channels file, relative to the repo root: copied into each bundle as channels.json. */
  channelsFile: string;
  dlqs: sqs.IQueue[];
  dbSecret: secretsmanager.ISecret;
  cacheAuthToken: secretsmanager.ISecret;
  logRetentionDays: number;
}

/** Entry files (handler `handler`), relative to the repo root. */
export const FUNCTION_ENTRIES = { dispatch: "functions/dispatch.ts", dlqRecorder: "functions/dlq_recorder.ts", metrics: "functions/metrics.ts" } as const;

const LAMBDA_CHANNELS_CONFIG = "/var/task/channels.json";

export class Functions extends Construct {
  readonly dispatch: nodejs.NodejsFunction;
  readonly dlqRecorder: nodejs.NodejsFunction;
  readonly metrics: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const { runtime } = props;
    justify(this, [
      {
        id: "AwsSolutions-IAM4",
        reason: "The Lambda service roles use AWS's minimal managed policies: basic execution (its own log writes) and, in the VPC, network-interface management.",
        appliesTo: [
          "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
          "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
        ],
      },
      {
        id: "AwsSolutions-IAM5",
        reason: "cloudwatch:PutMetricData has no resource-level permissions: it is held to the Jobworkerp namespace by condition.",
        appliesTo: ["Resource::*"],
      },
    ]);
    const inVpc = { vpc: props.vpc, vpcSubnets: props.subnets, securityGroups: [props.securityGroup] };
    // Lambda has no ECS-style secret injection and the runtime's function config reads MYSQL_PASSWORD and
    // REDIS_PASSWORD: CloudFormation resolves these dynamic references at deploy time (the values never appear in
    // the template; Lambda keeps them encrypted at rest).
    const secretRefs = {
      MYSQL_USER: props.dbSecret.secretValueFromJson("username").unsafeUnwrap(),
      MYSQL_PASSWORD: props.dbSecret.secretValueFromJson("password").unsafeUnwrap(),
      REDIS_PASSWORD: props.cacheAuthToken.secretValue.unsafeUnwrap(),
    };

    this.dispatch = this.fn("Dispatch", props, FUNCTION_ENTRIES.dispatch, {
      ...inVpc,
      description: "jobworkerp clock: moves due scheduled and periodic jobs into their queues",
      timeout: Duration.seconds(55), // under the one-minute schedule: runs never overlap
      memorySize: 512,
      reservedConcurrentExecutions: 1, // one clock
      environment: secretRefs,
    });
    runtime.grantEnqueue(this, this.dispatch);

    this.dlqRecorder = this.fn("DlqRecorder", props, FUNCTION_ENTRIES.dlqRecorder, {
      ...inVpc,
      description: "jobworkerp: records jobs that reached a dead-letter queue as failed",
      timeout: Duration.seconds(DLQ_RECORDER_TIMEOUT_SECONDS),
      memorySize: 512,
      environment: secretRefs,
    });
    runtime.grantEnqueue(this, this.dlqRecorder);
    for (const dlq of props.dlqs) {
      this.dlqRecorder.addEventSource(new SqsEventSource(dlq, { batchSize: 10, reportBatchItemFailures: true, maxConcurrency: 2 }));
    }

    this.metrics = this.fn("Metrics", props, FUNCTION_ENTRIES.metrics, {
      description: "jobworkerp: publishes Backlog and BacklogPerTask per channel for autoscaling",
      timeout: Duration.seconds(50),
      memorySize: 256,
      reservedConcurrentExecutions: 1,
    });
    const queues = runtime.queuePattern(this);
    this.metrics.addToRolePolicy(new iam.PolicyStatement({ sid: "ReadQueueDepths", actions: ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"], resources: [queues] }));
    justify(this.metrics, [
      { id: "AwsSolutions-IAM5", reason: "Reads the depth of every queue of this deployment (its prefix), whichever channels the config names.", appliesTo: [`Resource::${nagValue(this, queues)}`] },
    ]);
    this.metrics.addToRolePolicy(new iam.PolicyStatement({ sid: "ReadRunningTasks", actions: ["ecs:DescribeServices"], resources: runtime.workerServiceArns(this) }));
    this.metrics.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "PublishBacklog",
        actions: ["cloudwatch:PutMetricData"], // no resource-level permissions: held to the namespace instead
        resources: ["*"],
        conditions: { StringEquals: { "cloudwatch:namespace": METRICS_NAMESPACE } },
      }),
    );

    const names = scheduleNames(props.resourcePrefix);
    for (const [name, fn, scheduleName] of [["Dispatch", this.dispatch, names.dispatch], ["Metrics", this.metrics, names.metrics]] as const) {
      const role = new iam.Role(this, `${name}ScheduleRole`, {
        assumedBy: new iam.ServicePrincipal("scheduler.amazonaws.com", { conditions: { StringEquals: { "aws:SourceAccount": Stack.of(this).account } } }),
        description: `EventBridge Scheduler: invokes the ${name.toLowerCase()} Lambda`,
      });
      justify(role, [
        { id: "AwsSolutions-IAM5", reason: "lambda:InvokeFunction on this one function, its versions and aliases (`:*`), as grantInvoke writes it.", appliesTo: [`Resource::${nagValue(this, fn.functionArn)}:*`] },
      ]);
      new scheduler.Schedule(this, `${name}Schedule`, {
        scheduleName, // the names the runtime's local bootstrap gives them (adapters/aws/schedules.ts)
        description: `jobworkerp ${name.toLowerCase()} every minute`,
        schedule: scheduler.ScheduleExpression.expression(SCHEDULE_RATE),
        // a missed tick is covered by the next one: no retries piling up behind a slow run
        target: new targets.LambdaInvoke(fn, {
          role,
          retryAttempts: 0,
          maxEventAge: Duration.minutes(1),
          input: scheduler.ScheduleTargetInput.fromText(CLOCK_EVENT_INPUT),
        }),
      });
    }
  }

  private fn(id: string, props: FunctionsProps, entry: string, options: Partial<nodejs.NodejsFunctionProps>): nodejs.NodejsFunction {
    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention: props.logRetentionDays as logs.RetentionDays, removalPolicy: RemovalPolicy.DESTROY });
    const channelsFile = props.channelsFile;
    // Lambda sets AWS_REGION itself (a reserved variable)
    const shared = props.runtime.environment(this);
    delete shared.AWS_REGION;
    const fn = new nodejs.NodejsFunction(this, id, {
      entry: `${REPO_ROOT}/${entry}`,
      handler: "handler",
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}/package-lock.json`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      logGroup,
      bundling: {
        format: nodejs.OutputFormat.ESM,
        target: "node24",
        minify: true,
        sourceMap: true,
        mainFields: ["module", "main"],
        // the AWS SDK is bundled too (not taken from the Lambda runtime): the versions the runtime was tested with
        externalModules: [],
        // CommonJS packages inside an ES module bundle still call require()
        banner: "import { createRequire as __jwCreateRequire } from 'node:module'; const require = __jwCreateRequire(import.meta.url);",
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => [`cp "${inputDir}/${channelsFile}" "${outputDir}/channels.json"`],
        },
      },
      ...options,
      environment: {
        ...shared,
        CHANNELS_CONFIG: LAMBDA_CHANNELS_CONFIG,
        NODE_OPTIONS: "--enable-source-maps",
        ...options.environment,
      },
    });
    return fn;
  }
}
