// State: MySQL (RDS instance, or Aurora MySQL Serverless v2 by a flag) for definitions, durable jobs and results;
// Valkey (ElastiCache, TLS + AUTH) for the result bus; the DynamoDB job-state table. Each store has its own
// security group with no ingress: services are let in one by one with `allowFrom`.
import { Duration, RemovalPolicy, Token } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as elasticache from "aws-cdk-lib/aws-elasticache";
import * as rds from "aws-cdk-lib/aws-rds";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import { JOB_STATE_TABLE } from "../../worker-container/src/adapters/aws/resources.js";
import { justify } from "../nag.js";

export interface DataProps {
  vpc: ec2.IVpc;
  subnets: ec2.SubnetSelection;
  resourcePrefix: string;
  auroraServerless: boolean;
  dbInstanceType: string;
  multiAz: boolean;
  deletionProtection: boolean;
  retainData: boolean;
  cacheNodeType: string;
  cacheReplicas: number;
}

export const DB_NAME = "jobworkerp";
const DB_USER = "jobworkerp";

const WHY_NO_ROTATION =
  "The runtime reads this secret once at start (ECS injects it); a rotation would break new connections until every task restarts. Rotate deliberately: put a new value, then force a new deployment of the services.";

export class Data extends Construct {
  readonly dbSecurityGroup: ec2.SecurityGroup;
  readonly cacheSecurityGroup: ec2.SecurityGroup;
  /** Generated credentials: JSON with username, password (and host, port, dbname once attached). */
  readonly dbSecret: secretsmanager.ISecret;
  readonly dbHost: string;
  readonly dbPort: string;
  readonly cacheAuthToken: secretsmanager.Secret;
  /** rediss:// URL of the cache's primary endpoint (TLS; the AUTH token comes separately as REDIS_PASSWORD). */
  readonly redisUrl: string;
  readonly table: dynamodb.Table;
  /** The resources that hold state (for encryption assertions and teardown notes). */
  readonly dbResource: rds.DatabaseInstance | rds.DatabaseCluster;
  readonly cache: elasticache.CfnReplicationGroup;

  constructor(scope: Construct, id: string, props: DataProps) {
    super(scope, id);
    const { vpc } = props;
    this.dbSecurityGroup = new ec2.SecurityGroup(this, "DbSg", { vpc, allowAllOutbound: false, description: "MySQL: reachable only from the services allowed in" });
    this.cacheSecurityGroup = new ec2.SecurityGroup(this, "CacheSg", { vpc, allowAllOutbound: false, description: "Valkey: reachable only from the services allowed in" });

    const credentials = rds.Credentials.fromGeneratedSecret(DB_USER, { secretName: `${props.resourcePrefix}/mysql` });
    const removalPolicy = props.retainData ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY;
    if (props.auroraServerless) {
      const cluster = new rds.DatabaseCluster(this, "Aurora", {
        engine: rds.DatabaseClusterEngine.auroraMysql({ version: rds.AuroraMysqlEngineVersion.VER_3_11_1 }),
        credentials,
        defaultDatabaseName: DB_NAME,
        vpc,
        vpcSubnets: props.subnets,
        securityGroups: [this.dbSecurityGroup],
        writer: rds.ClusterInstance.serverlessV2("writer"),
        readers: props.multiAz ? [rds.ClusterInstance.serverlessV2("reader", { scaleWithWriter: true })] : [],
        serverlessV2MinCapacity: 0.5,
        serverlessV2MaxCapacity: 16,
        storageEncrypted: true,
        backup: { retention: Duration.days(7) },
        deletionProtection: props.deletionProtection,
        removalPolicy,
        cloudwatchLogsExports: ["error", "slowquery"],
      });
      justify(cluster, [
        { id: "AwsSolutions-SMG4", reason: WHY_NO_ROTATION },
        { id: "AwsSolutions-RDS6", reason: "The runtime authenticates with the generated password from Secrets Manager (mysql2 has no IAM token refresh); network access is limited by the security group." },
        { id: "AwsSolutions-RDS11", reason: "The port is not a security boundary here: the security group admits only the front, workers and Lambdas." },
        { id: "AwsSolutions-RDS14", reason: "Backtrack is not needed: point-in-time restore from the 7-day automated backups covers recovery." },
        { id: "AwsSolutions-RDS16", reason: "Error and slow-query logs are exported; audit and general logs would log every job write (cost) and hold job arguments." },
      ]);
      this.dbResource = cluster;
      this.dbHost = cluster.clusterEndpoint.hostname;
      this.dbPort = Token.asString(cluster.clusterEndpoint.port);
      this.dbSecret = cluster.secret!;
    } else {
      const instance = new rds.DatabaseInstance(this, "Mysql", {
        engine: rds.DatabaseInstanceEngine.mysql({ version: rds.MysqlEngineVersion.VER_8_4_10 }),
        instanceType: new ec2.InstanceType(props.dbInstanceType),
        credentials,
        databaseName: DB_NAME,
        vpc,
        vpcSubnets: props.subnets,
        securityGroups: [this.dbSecurityGroup],
        multiAz: props.multiAz,
        allocatedStorage: 20,
        maxAllocatedStorage: 200,
        storageType: rds.StorageType.GP3,
        storageEncrypted: true,
        backupRetention: Duration.days(7),
        deletionProtection: props.deletionProtection,
        removalPolicy,
        autoMinorVersionUpgrade: true,
        cloudwatchLogsExports: ["error", "slowquery"],
      });
      justify(instance, [
        { id: "AwsSolutions-SMG4", reason: WHY_NO_ROTATION },
        { id: "AwsSolutions-RDS3", reason: "Single-AZ by default to keep an idle deployment cheap; `-c multiAz=true` turns Multi-AZ on. Lost data is bounded by the automated backups." },
        { id: "AwsSolutions-RDS11", reason: "The port is not a security boundary here: the security group admits only the front, workers and Lambdas." },
      ]);
      this.dbResource = instance;
      this.dbHost = instance.dbInstanceEndpointAddress;
      this.dbPort = instance.dbInstanceEndpointPort;
      this.dbSecret = instance.secret!;
    }

    // Valkey holds only the result bus (pub/sub and briefly kept results): losing a node costs in-flight DIRECT
    // waits, never queued jobs (SQS) or job state (DynamoDB). One node by default; cacheReplicas adds Multi-AZ.
    this.cacheAuthToken = new secretsmanager.Secret(this, "CacheAuthToken", {
      secretName: `${props.resourcePrefix}/valkey-auth`,
      description: "AUTH token of the result-bus Valkey (REDIS_PASSWORD)",
      generateSecretString: { excludePunctuation: true, passwordLength: 64 },
    });
    justify(this.cacheAuthToken, [{ id: "AwsSolutions-SMG4", reason: WHY_NO_ROTATION }]);
    const subnetGroup = new elasticache.CfnSubnetGroup(this, "CacheSubnets", {
      description: "jobworkerp result bus",
      subnetIds: vpc.selectSubnets(props.subnets).subnetIds,
    });
    const replicated = props.cacheReplicas > 0;
    this.cache = new elasticache.CfnReplicationGroup(this, "Cache", {
      replicationGroupDescription: `${props.resourcePrefix} result bus`,
      engine: "valkey",
      engineVersion: "8.0",
      cacheNodeType: props.cacheNodeType,
      numCacheClusters: 1 + props.cacheReplicas,
      automaticFailoverEnabled: replicated,
      multiAzEnabled: replicated,
      transitEncryptionEnabled: true,
      transitEncryptionMode: "required",
      atRestEncryptionEnabled: true,
      authToken: this.cacheAuthToken.secretValue.unsafeUnwrap(), // a CloudFormation dynamic reference, never plaintext
      cacheSubnetGroupName: subnetGroup.ref,
      securityGroupIds: [this.cacheSecurityGroup.securityGroupId],
      autoMinorVersionUpgrade: true,
      snapshotRetentionLimit: 0,
    });
    justify(this.cache, [
      ...(replicated ? [] : [{ id: "AwsSolutions-AEC4", reason: "Holds only the result bus (no queued jobs, no job state): one node by default to keep costs low; `-c cacheReplicas=1` makes it Multi-AZ." }]),
      { id: "AwsSolutions-AEC5", reason: "The port is not a security boundary here: the security group admits only the front, workers and Lambdas, and AUTH + TLS are required." },
    ]);
    this.redisUrl = `rediss://${this.cache.attrPrimaryEndPointAddress}:${this.cache.attrPrimaryEndPointPort}`;

    this.table = new dynamodb.Table(this, "JobState", {
      tableName: JOB_STATE_TABLE.name(props.resourcePrefix),
      partitionKey: { name: JOB_STATE_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: JOB_STATE_TABLE.ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: props.deletionProtection,
      removalPolicy: props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    const index = JOB_STATE_TABLE.statusIndex;
    this.table.addGlobalSecondaryIndex({
      indexName: index.name,
      partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: index.sortKey, type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [...index.nonKeyAttributes],
    });
  }

  /** Let `peer` (a service's or the Lambdas' security group) reach MySQL and Valkey. */
  allowFrom(peer: ec2.ISecurityGroup, what: string): void {
    this.dbSecurityGroup.addIngressRule(peer, ec2.Port.tcp(3306), `MySQL from ${what}`);
    this.cacheSecurityGroup.addIngressRule(peer, ec2.Port.tcp(6379), `Valkey from ${what}`);
  }
}
