"""Dagster itself on AWS: the webserver and the daemon as Fargate services, every run a Fargate task
(dagster_aws's EcsRunLauncher), the instance's storage in PostgreSQL (RDS) and its compute logs in S3.

| piece              | what |
| ------------------ | ---- |
| network            | a VPC: public subnets (the NAT gateway only), private subnets (tasks, the internal load balancer), isolated subnets (the database); an S3 gateway endpoint (lake and image-layer traffic skip the NAT); flow logs |
| database           | RDS PostgreSQL, encrypted, TLS enforced (rds.force_ssl), isolated subnets, reachable only from the webserver's and the daemon's security groups; its generated credentials in Secrets Manager |
| compute logs       | a private bucket (DAGSTER_COMPUTE_LOG_BUCKET) that expires them; the operations log bucket gets its access logs and the load balancer's |
| cluster            | ECS (Fargate), Container Insights; three task definitions from one image (deploy/Dockerfile): webserver, daemon, run |
| UI                 | an internal Application Load Balancer in front of the webserver service; HTTPS when a certificate is given |
| roles              | one task role each. webserver: read/delete compute logs, stop runs (the UI's terminate), nothing on the lake. daemon: start run tasks (ecs:RunTask on the run task definition, iam:PassRole for its two roles only), watch and stop them, read their logs, read the lake (its sensors list the raw zone), write compute logs (sensor ticks). run: the platform's grants (stacks/access.py: lake read/write, Athena, Glue, Kinesis) and compute-log writes |

Every container gets the platform's environment (the access stack's values) and the variables that
deploy/aws/dagster.yaml reads; the database password comes from Secrets Manager at task start.
"""

from __future__ import annotations

import re

from aws_cdk import ArnFormat, Aws, CfnOutput, Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from ecommerce_infra import contract
from ecommerce_infra.nag import finding, object_wildcard, suppression
from ecommerce_infra.settings import OrchestrationSettings, TaskSize
from ecommerce_infra.stacks.access import (
    LAKE_BUCKET_ACTIONS,
    deployment_environment,
    lake_folder,
    lake_objects_arn,
    platform_statements,
    platform_statements_suppression,
)
from ecommerce_infra.stacks.common import LakeStack, log_bucket, log_retention, private_bucket

DB_USERNAME = "dagster_admin"
POSTGRES_VERSION = rds.PostgresEngineVersion.VER_16  # the major version; RDS applies minor upgrades
ECS_TASKS = "ecs-tasks.amazonaws.com"
# Roles of the three task definitions; the container of each is named after it, except the run's
# (RUN_CONTAINER_NAME, which the run launcher overrides).
WEBSERVER, DAEMON, RUN = "webserver", "daemon", "run"


class OrchestrationStack(LakeStack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        orchestration: OrchestrationSettings,
        stream: kinesis.IStream,
        repository: ecr.IRepository,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # settings=, bucket=: see LakeStack
        settings, bucket = self.settings, self.bucket
        self.orchestration = o = orchestration
        retention = log_retention(settings.log_retention_days)
        self.run_family = f"{self.stack_name}-dagster-run"

        # --- network ---------------------------------------------------------------------------
        self.flow_log_group = logs.LogGroup(
            self, "VpcFlowLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(o.vpc_cidr),
            max_azs=o.max_azs,
            nat_gateways=o.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="database", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            # S3 traffic (the lake, ECR's image layers) through the free gateway endpoint, not the NAT
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
            restrict_default_security_group=False,  # a custom resource; no task uses the default group
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

        self.ui_security_group = ec2.SecurityGroup(
            self, "UiLoadBalancerSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="Internal load balancer of the Dagster UI: UI users in, the webserver out",
        )
        self.webserver_security_group = ec2.SecurityGroup(
            self, "WebserverSecurityGroup", vpc=self.vpc, allow_all_outbound=True,
            description="Dagster webserver tasks: the load balancer in; database, AWS APIs out",
        )
        self.daemon_security_group = ec2.SecurityGroup(
            self, "DaemonSecurityGroup", vpc=self.vpc, allow_all_outbound=True,
            description="Dagster daemon and run tasks (runs start in the daemon network): nothing in",
        )
        self.database_security_group = ec2.SecurityGroup(
            self, "DatabaseSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="Dagster PostgreSQL: the webserver, daemon and run tasks in",
        )

        # --- buckets: operations logs, compute logs ------------------------------------------------
        self.ops_logs_bucket = log_bucket(
            self,
            "OpsLogsBucket",
            rule_id="expire-ops-logs",
            expiration_days=o.ops_logs_expiration_days,
            reason="This bucket receives the load balancer's access logs and the compute-log "
            "bucket's server access logs; logging it into itself would loop.",
        )
        self.compute_logs_bucket = private_bucket(
            self,
            "ComputeLogsBucket",
            server_access_logs_bucket=self.ops_logs_bucket,
            server_access_logs_prefix="compute-logs-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-compute-logs",
                    prefix=o.compute_logs_prefix + "/",
                    expiration=Duration.days(o.compute_logs_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )

        # --- database ------------------------------------------------------------------------------
        engine = rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSION)
        self.db_instance_identifier = f"{self.stack_name.lower()}-dagster"
        # The log group RDS exports to, made here so it has a retention (else RDS makes one forever).
        self.database_log_group = logs.LogGroup(
            self,
            "DatabaseLogs",
            log_group_name=f"/aws/rds/instance/{self.db_instance_identifier}/postgresql",
            retention=retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.database = rds.DatabaseInstance(
            self,
            "Database",
            engine=engine,
            instance_identifier=self.db_instance_identifier,
            instance_type=ec2.InstanceType(o.db_instance_class),
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.database_security_group],
            publicly_accessible=False,
            credentials=rds.Credentials.from_generated_secret(
                DB_USERNAME, secret_name=f"{self.stack_name}/dagster-database"
            ),
            database_name=o.db_name,
            storage_encrypted=True,
            storage_type=rds.StorageType.GP3,
            allocated_storage=o.db_allocated_storage_gib,
            max_allocated_storage=o.db_max_allocated_storage_gib,
            multi_az=o.db_multi_az,
            backup_retention=Duration.days(o.db_backup_retention_days),
            deletion_protection=o.db_deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            parameter_group=rds.ParameterGroup(
                self,
                "DatabaseParameters",
                engine=engine,
                description="Dagster PostgreSQL: TLS only, slow statements logged",
                parameters={"rds.force_ssl": "1", "log_min_duration_statement": "2000"},
            ),
            cloudwatch_logs_exports=["postgresql"],
        )
        self.database.node.add_dependency(self.database_log_group)
        self.database_secret = self.database.secret
        assert self.database_secret is not None
        for peer in (self.webserver_security_group, self.daemon_security_group):
            self.database.connections.allow_default_port_from(peer, "Dagster instance storage")
        self._suppress_database()

        # --- cluster, roles, task definitions ------------------------------------------------------
        # ECS Exec sessions (the UI's port-forwarding hop) are logged to a group of their own, which is
        # also all that the webserver's exec grants may write to.
        self.exec_log_group = (
            logs.LogGroup(self, "EcsExecLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
            if o.ecs_exec
            else None
        )
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED if o.container_insights else ecs.ContainerInsights.DISABLED,
            execute_command_configuration=ecs.ExecuteCommandConfiguration(
                logging=ecs.ExecuteCommandLogging.OVERRIDE,
                log_configuration=ecs.ExecuteCommandLogConfiguration(cloud_watch_log_group=self.exec_log_group),
            )
            if self.exec_log_group is not None
            else None,
        )
        if not o.container_insights:
            NagSuppressions.add_resource_suppressions(
                self.cluster,
                [suppression("AwsSolutions-ECS4", reason="Container Insights turned off by the "
                             "container_insights context setting (it costs per metric); service logs remain.")],
            )
        self.log_groups = {
            role: logs.LogGroup(self, f"{role.capitalize()}Logs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
            for role in (WEBSERVER, DAEMON, RUN)
        }
        self.task_roles = {role: self._task_role(role) for role in (WEBSERVER, DAEMON, RUN)}
        image = ecs.ContainerImage.from_ecr_repository(repository, o.image_tag)
        self.platform_env = deployment_environment(self, settings, bucket)

        def dagster_env(run_task_definition: str) -> dict[str, str]:
            return {
                contract.ENV_DAGSTER_HOME: contract.IMAGE_DAGSTER_HOME,
                contract.ENV_PG_HOST: self.database.db_instance_endpoint_address,
                contract.ENV_PG_PORT: self.database.db_instance_endpoint_port,
                contract.ENV_PG_DB: o.db_name,
                contract.ENV_COMPUTE_LOG_BUCKET: self.compute_logs_bucket.bucket_name,
                contract.ENV_COMPUTE_LOG_PREFIX: o.compute_logs_prefix,
                contract.ENV_RUN_TASK_DEFINITION: run_task_definition,
            }

        secrets = {
            contract.ENV_PG_USERNAME: ecs.Secret.from_secrets_manager(self.database_secret, "username"),
            contract.ENV_PG_PASSWORD: ecs.Secret.from_secrets_manager(self.database_secret, "password"),
        }
        # The run task definition first: the others name it. Its own containers name it by family
        # (a task definition cannot hold its own ARN); the launcher resolves the family to the latest
        # revision.
        self.task_definitions: dict[str, ecs.FargateTaskDefinition] = {}
        self.containers: dict[str, ecs.ContainerDefinition] = {}
        self._task_definition(RUN, o.run, image, {**self.platform_env, **dagster_env(self.run_family)}, secrets,
                              container_name=contract.RUN_CONTAINER_NAME, family=self.run_family)
        run_arn = self.task_definitions[RUN].task_definition_arn
        self._task_definition(WEBSERVER, o.webserver, image, {**self.platform_env, **dagster_env(run_arn)}, secrets,
                              command=contract.WEBSERVER_COMMAND, port=contract.WEBSERVER_PORT)
        self._task_definition(DAEMON, o.daemon, image, {**self.platform_env, **dagster_env(run_arn)}, secrets,
                              command=contract.DAEMON_COMMAND)
        self.dagster_env = dagster_env(run_arn)
        self._grant(bucket, stream)

        # --- services ------------------------------------------------------------------------------
        self.webserver_service = self._service(
            "WebserverService",
            WEBSERVER,
            self.webserver_security_group,
            private,
            min_healthy_percent=100,
            max_healthy_percent=200,
            health_check_grace_period=Duration.minutes(6),  # the code location loads before /server_info answers
            enable_execute_command=o.ecs_exec,
        )
        self.daemon_service = self._service(
            "DaemonService",
            DAEMON,
            self.daemon_security_group,
            private,
            # exactly one daemon: the old task stops before the new one starts
            min_healthy_percent=0,
            max_healthy_percent=100,
        )

        if o.ecs_exec:  # CDK adds the ECS Exec grants to the role's default policy with the service
            NagSuppressions.add_resource_suppressions(
                self.task_roles[WEBSERVER],
                [
                    suppression(
                        "AwsSolutions-IAM5",
                        reason="ECS Exec (the hop for SSM port forwarding to the internal UI) needs the "
                        "ssmmessages channel actions and logs:DescribeLogGroups, which have no "
                        "resource-level permissions; session logs go to the exec log group's streams only.",
                        applies_to=[
                            "Resource::*",
                            finding(r"Resource::arn:<AWS::Partition>:logs:.*:log-group:<EcsExecLogs[0-9A-F]+>:\*"),
                        ],
                    )
                ],
                apply_to_children=True,
            )

        # --- the internal load balancer ------------------------------------------------------------
        https = o.certificate_arn is not None
        self.ui_port = 443 if https else 80
        for cidr in o.ui_allowed_cidrs or (o.vpc_cidr,):
            self.ui_security_group.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(self.ui_port), "Dagster UI users")
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "UiLoadBalancer",
            vpc=self.vpc,
            internet_facing=False,
            vpc_subnets=private,
            security_group=self.ui_security_group,
            drop_invalid_header_fields=True,
        )
        self.load_balancer.log_access_logs(self.ops_logs_bucket, prefix="ui-load-balancer")
        listener = self.load_balancer.add_listener(
            "Ui",
            port=self.ui_port,
            protocol=elbv2.ApplicationProtocol.HTTPS if https else elbv2.ApplicationProtocol.HTTP,
            certificates=[elbv2.ListenerCertificate.from_arn(o.certificate_arn)] if https else None,
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS if https else None,
            open=False,  # only ui_allowed_cidrs (the rules above), never 0.0.0.0/0
        )
        listener.add_targets(
            "Webserver",
            port=contract.WEBSERVER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[
                self.webserver_service.load_balancer_target(
                    container_name=WEBSERVER, container_port=contract.WEBSERVER_PORT
                )
            ],
            health_check=elbv2.HealthCheck(
                path=contract.WEBSERVER_HEALTH_PATH, healthy_http_codes="200", interval=Duration.seconds(30)
            ),
            deregistration_delay=Duration.seconds(30),
        )
        self.webserver_url = f"{'https' if https else 'http'}://{self.load_balancer.load_balancer_dns_name}"

        # --- outputs -------------------------------------------------------------------------------
        values = {
            **self.dagster_env,
            "DAGSTER_PG_SECRET_ARN": self.database_secret.secret_arn,
            "DAGSTER_ECS_CLUSTER": self.cluster.cluster_name,
            "DAGSTER_WEBSERVER_URL": self.webserver_url,
        }
        self.output_values = {env_name: values[env_name] for env_name in contract.ORCHESTRATION_OUTPUT_ENV.values()}
        for output_id, env_name in contract.ORCHESTRATION_OUTPUT_ENV.items():
            CfnOutput(self, output_id, value=self.output_values[env_name], description=env_name)
        CfnOutput(self, "DagsterWebserverService", value=self.webserver_service.service_name,
                  description="ECS service of the webserver (ECS Exec target for SSM port forwarding)")

    # ------------------------------------------------------------------------------------------------
    def _service(
        self,
        construct_id: str,
        role: str,
        security_group: ec2.ISecurityGroup,
        subnets: ec2.SubnetSelection,
        **deployment,
    ) -> ecs.FargateService:
        """One task of ``role``'s task definition in ``subnets`` (no public IP), a failed deployment
        rolled back; ``deployment`` holds the service's own settings (healthy percentages, ...)."""
        return ecs.FargateService(
            self,
            construct_id,
            cluster=self.cluster,
            task_definition=self.task_definitions[role],
            desired_count=1,
            security_groups=[security_group],
            vpc_subnets=subnets,
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            **deployment,
        )

    def _task_role(self, role: str) -> iam.Role:
        return iam.Role(
            self,
            f"{role.capitalize()}TaskRole",
            assumed_by=iam.ServicePrincipal(
                ECS_TASKS,
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:ecs:{self.region}:{self.account}:*"},
                },
            ),
            description=f"Dagster {role} tasks of the ecommerce platform",
        )

    def _task_definition(
        self,
        role: str,
        size: TaskSize,
        image: ecs.ContainerImage,
        environment: dict[str, str],
        secrets: dict[str, ecs.Secret],
        *,
        container_name: str | None = None,
        command: list[str] | None = None,
        port: int | None = None,
        family: str | None = None,
    ) -> None:
        task_definition = ecs.FargateTaskDefinition(
            self,
            f"{role.capitalize()}TaskDefinition",
            family=family,
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            task_role=self.task_roles[role],
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,  # the image's torch is the x86-64 CPU build
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        container = task_definition.add_container(
            container_name or role,
            container_name=container_name or role,
            image=image,
            command=command,
            environment=environment,
            secrets=secrets,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=role, log_group=self.log_groups[role]),
            port_mappings=[ecs.PortMapping(container_port=port)] if port else None,
            essential=True,
            stop_timeout=Duration.seconds(60),
        )
        self.task_definitions[role] = task_definition
        self.containers[role] = container
        NagSuppressions.add_resource_suppressions(
            task_definition,
            [
                suppression(
                    "AwsSolutions-ECS2",
                    reason="The environment holds names and endpoints only (bucket, prefix, database "
                    "host, task definition, Glue/Athena/Kinesis names); the database credentials come "
                    "from Secrets Manager as ECS secrets.",
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(
            task_definition.obtain_execution_role(),
            [
                suppression(
                    "AwsSolutions-IAM5",
                    reason="ecr:GetAuthorizationToken has no resource-level permissions; image pulls, "
                    "log writes and the secret read are limited to this stack's repository, log "
                    "group and database secret.",
                    applies_to=["Resource::*"],
                )
            ],
            apply_to_children=True,
        )

    def _grant(self, bucket: s3.IBucket, stream: kinesis.IStream) -> None:
        o, settings = self.orchestration, self.settings
        cluster_tasks = self.format_arn(
            service="ecs", resource="task", resource_name=f"{self.cluster.cluster_name}/*"
        )
        run_task_definitions = self.format_arn(
            service="ecs", resource="task-definition", resource_name=f"{self.run_family}:*"
        )
        run_log_streams = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{self.log_groups[RUN].log_group_name}:log-stream:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        compute_objects = self.compute_logs_bucket.arn_for_objects(o.compute_logs_prefix + "/*")
        in_cluster = {"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}}

        def compute_logs(sid: str, actions: list[str]) -> list[iam.PolicyStatement]:
            return [
                iam.PolicyStatement(sid=sid, actions=actions, resources=[compute_objects]),
                iam.PolicyStatement(
                    # HeadObject of a log not written yet answers 404 (not 403) only with ListBucket
                    sid="ComputeLogsList",
                    actions=["s3:ListBucket"],
                    resources=[self.compute_logs_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [o.compute_logs_prefix + "/*"]}},
                ),
            ]

        describe_only = iam.PolicyStatement(
            # Neither has resource-level permissions. DescribeTaskDefinition: the run launcher checks
            # the run task definition when it starts; DescribeNetworkInterfaces: runs start in the
            # daemon's own subnets and security groups (use_current_ecs_task_config).
            sid="DescribeOnly",
            actions=["ecs:DescribeTaskDefinition"],
            resources=["*"],
        )
        watch_runs = iam.PolicyStatement(
            sid="WatchRuns", actions=["ecs:DescribeTasks", "ecs:StopTask"], resources=[cluster_tasks],
            conditions=in_cluster,
        )
        statements: dict[str, list[iam.PolicyStatement]] = {
            # The UI: compute logs (read; deleting a run deletes its logs) and terminating runs.
            WEBSERVER: [
                *compute_logs("ComputeLogsRead", ["s3:GetObject", "s3:DeleteObject"]),
                watch_runs,
                describe_only,
            ],
            # Schedules, sensors, the run queue and run monitoring.
            DAEMON: [
                *compute_logs("ComputeLogsWrite", ["s3:GetObject", "s3:PutObject"]),
                iam.PolicyStatement(
                    sid="LaunchRuns", actions=["ecs:RunTask"], resources=[run_task_definitions], conditions=in_cluster
                ),
                iam.PolicyStatement(
                    sid="TagRuns",
                    actions=["ecs:TagResource"],
                    resources=[cluster_tasks],
                    conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
                ),
                watch_runs,
                iam.PolicyStatement(
                    sid="PassRunRoles",
                    actions=["iam:PassRole"],
                    resources=[
                        self.task_roles[RUN].role_arn,
                        self.task_definitions[RUN].obtain_execution_role().role_arn,
                    ],
                    conditions={"StringEquals": {"iam:PassedToService": ECS_TASKS}},
                ),
                iam.PolicyStatement(
                    sid="DescribeOnly",
                    actions=["ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces"],
                    resources=["*"],
                ),
                iam.PolicyStatement(sid="RunLogs", actions=["logs:GetLogEvents"], resources=[run_log_streams]),
                # the sensors look at the raw zone (which stream days changed); they write nothing
                iam.PolicyStatement(sid="LakeRead", actions=["s3:GetObject"], resources=[lake_objects_arn(settings, bucket)]),
                iam.PolicyStatement(sid="LakeBucket", actions=LAKE_BUCKET_ACTIONS, resources=[bucket.bucket_arn]),
            ],
            # What the platform's assets do (the access stack's DagsterRole), plus compute logs.
            RUN: [
                *platform_statements(self, settings, bucket, stream).values(),
                *compute_logs("ComputeLogsWrite", ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]),
            ],
        }
        compute_wildcard = object_wildcard(o.compute_logs_prefix + "/")
        task_wildcard = finding(r"Resource::arn:<AWS::Partition>:ecs:.*:task/<.*>/\*")
        reasons: dict[str, tuple[str, list]] = {
            WEBSERVER: (
                "Compute-log objects are named by run and step under the compute-log prefix only; "
                "run tasks are addressed as tasks of this cluster (their ids are made at launch); "
                "ecs:DescribeTaskDefinition has no resource-level permissions.",
                [compute_wildcard, task_wildcard, "Resource::*"],
            ),
            DAEMON: (
                "Compute-log and lake objects are data named at run time, under their prefixes "
                "only (the lake read-only); run tasks are tasks of this cluster, started from "
                "revisions of the run task definition family only; their log streams are named "
                "per task; ecs:DescribeTaskDefinition and ec2:DescribeNetworkInterfaces have no "
                "resource-level permissions.",
                [
                    compute_wildcard,
                    object_wildcard(lake_folder(settings)),
                    task_wildcard,
                    finding(rf"Resource::arn:<AWS::Partition>:ecs:.*:task-definition/{re.escape(self.run_family)}:\*"),
                    finding(r"Resource::arn:<AWS::Partition>:logs:.*:log-stream:\*"),
                    "Resource::*",
                ],
            ),
            RUN: ("Compute-log objects are named by run and step under the compute-log prefix only.", [compute_wildcard]),
        }
        self.policies: dict[str, iam.Policy] = {}
        for role, role_statements in statements.items():
            policy = iam.Policy(
                self, f"{role.capitalize()}TaskPolicy", roles=[self.task_roles[role]], statements=role_statements
            )
            self.policies[role] = policy
            reason, applies_to = reasons[role]
            found: list[NagPackSuppression] = [suppression("AwsSolutions-IAM5", reason=reason, applies_to=applies_to)]
            if role == RUN:
                found.append(platform_statements_suppression(settings))
                found = [_merge_iam5(found)]
            NagSuppressions.add_resource_suppressions(policy, found)

    def _suppress_database(self) -> None:
        o = self.orchestration
        found = [
            suppression(
                "AwsSolutions-RDS6",
                reason="Dagster connects with the generated password from Secrets Manager; IAM "
                "database tokens expire every 15 minutes and dagster-postgres holds one connection "
                "string per process.",
            ),
            suppression(
                "AwsSolutions-RDS11",
                reason="The port is not a control: the database lives in isolated subnets and its "
                "security group admits only the webserver's and the daemon's (and run tasks').",
            ),
        ]
        if not o.db_multi_az:
            found.append(
                suppression(
                    "AwsSolutions-RDS3",
                    reason="Single-AZ by default (db_multi_az=false): the database holds Dagster's run "
                    "history, not the lake; daily backups are kept and a restore or failover costs "
                    "minutes of orchestration only. Set -c db_multi_az=true for a standby.",
                )
            )
        if not o.db_deletion_protection:
            found.append(
                suppression(
                    "AwsSolutions-RDS10",
                    reason="Deletion protection turned off by the db_deletion_protection context "
                    "setting (a throwaway deployment); a final snapshot is still taken on delete.",
                )
            )
        NagSuppressions.add_resource_suppressions(self.database, found)
        NagSuppressions.add_resource_suppressions(
            self.database.node.find_child("Secret"),
            [
                suppression(
                    "AwsSolutions-SMG4",
                    reason="Not rotated automatically: the webserver, daemon and run tasks read the "
                    "password at start, so a rotation must be followed by a new deployment of both "
                    "services (deploy/README.md); rotating behind their back would break them.",
                )
            ],
        )


def _merge_iam5(found: list[NagPackSuppression]) -> NagPackSuppression:
    """One IAM5 suppression from several (a resource keeps one entry per rule)."""
    reasons = " ".join(f.reason for f in found)
    applies_to = [a for f in found for a in (f.applies_to or [])]
    return suppression("AwsSolutions-IAM5", reason=reasons, applies_to=applies_to)

