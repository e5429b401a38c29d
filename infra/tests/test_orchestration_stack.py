"""Dagster on ECS: the image's registry, the cluster and its three task definitions, the two services behind
an internal load balancer, PostgreSQL in isolated subnets with its secret, compute logs in S3, and task roles
that split the Dagster role's grants (webserver: no lake; daemon: starts run tasks only; run: the lake)."""

from __future__ import annotations

import re

import pytest
from conftest import ACCOUNT, REGION, as_list, flatten, one, resources_of, synthesize

from ecommerce_infra import contract
from ecommerce_infra.settings import InfraConfigError, load_orchestration_settings
from ecommerce_infra.stacks.access import platform_statements  # noqa: F401 (the run role's source)

WEB, DAEMON, RUN = "webserver", "daemon", "run"


def _raw(synth) -> dict:
    return synth.raw[synth.built.orchestration.stack_name]


def _task_definitions(raw: dict) -> dict[str, dict]:
    """Task definition properties by role (the logical id starts with the role's name)."""
    out = {}
    for logical_id, res in resources_of(raw, "AWS::ECS::TaskDefinition").items():
        for role in (WEB, DAEMON, RUN):
            if logical_id.lower().startswith(role):
                out[role] = res["Properties"]
    assert set(out) == {WEB, DAEMON, RUN}, sorted(resources_of(raw, "AWS::ECS::TaskDefinition"))
    return out


def _container(td: dict) -> dict:
    (container,) = td["ContainerDefinitions"]
    return container


def _env(container: dict) -> dict:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def _policy(raw: dict, role: str) -> dict[str, dict]:
    policies = resources_of(raw, "AWS::IAM::Policy")
    (policy,) = [p for lid, p in policies.items() if lid.startswith(f"{role.capitalize()}TaskPolicy")]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def _actions(statements: dict[str, dict]) -> set[str]:
    return {a for s in statements.values() for a in as_list(s["Action"])}


def _yaml_env_names() -> set[str]:
    """The variables deploy/aws/dagster.yaml reads (its `env:` entries, comments left out)."""
    text = "\n".join(line.split("#", 1)[0] for line in contract.INSTANCE_YAML.read_text().splitlines())
    return set(re.findall(r"\benv:\s*([A-Z][A-Z0-9_]*)", text))


# --- task definitions and containers -------------------------------------------------------------------
def test_three_fargate_task_definitions_from_one_image(synth):
    tds = _task_definitions(_raw(synth))
    images = set()
    for role, td in tds.items():
        assert td["RequiresCompatibilities"] == ["FARGATE"] and td["NetworkMode"] == "awsvpc"
        assert td["RuntimePlatform"] == {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"}
        container = _container(td)
        images.add(flatten(container["Image"]))
        log = container["LogConfiguration"]
        assert log["LogDriver"] == "awslogs" and log["Options"]["awslogs-stream-prefix"] == role
    (image,) = images
    assert image.endswith(":latest") and "<import:" in image  # the registry stack's repository
    assert (tds[WEB]["Cpu"], tds[WEB]["Memory"]) == ("1024", "2048")
    assert (tds[DAEMON]["Cpu"], tds[DAEMON]["Memory"]) == ("512", "2048")
    assert (tds[RUN]["Cpu"], tds[RUN]["Memory"]) == ("2048", "8192")
    assert tds[RUN]["Family"] == synth.built.orchestration.run_family


def test_commands_and_the_run_container(synth):
    tds = _task_definitions(_raw(synth))
    assert _container(tds[WEB])["Command"] == contract.WEBSERVER_COMMAND
    assert _container(tds[WEB])["PortMappings"][0]["ContainerPort"] == contract.WEBSERVER_PORT
    assert _container(tds[DAEMON])["Command"] == ["dagster-daemon", "run", "-w", "/app/workspace.yaml"]
    run = _container(tds[RUN])
    assert run["Name"] == contract.RUN_CONTAINER_NAME == "run"
    assert "Command" not in run  # the run launcher sets `dagster api execute_run ...`


def test_every_container_gets_what_the_instance_file_reads(synth):
    """deploy/aws/dagster.yaml's `env:` entries are all set in every container (the password and user
    from the database secret), and its run container name is the run task definition's."""
    wanted = _yaml_env_names()
    assert wanted == {
        "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD",
        "DAGSTER_COMPUTE_LOG_BUCKET", "DAGSTER_COMPUTE_LOG_PREFIX", "DAGSTER_RUN_TASK_DEFINITION", "AWS_REGION",
    }
    assert re.search(rf"^\s*container_name:\s*{contract.RUN_CONTAINER_NAME}\s*$", contract.INSTANCE_YAML.read_text(), re.M)
    raw = _raw(synth)
    secret_ids = {lid for lid in resources_of(raw, "AWS::SecretsManager::SecretTargetAttachment")}
    assert len(secret_ids) == 1
    for role, td in _task_definitions(raw).items():
        container = _container(td)
        env = _env(container)
        secrets = {s["Name"]: flatten(s["ValueFrom"]) for s in container["Secrets"]}
        assert wanted <= set(env) | set(secrets), (role, wanted - set(env) - set(secrets))
        assert set(secrets) == {"DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD"}
        assert secrets["DAGSTER_PG_USERNAME"].endswith(":username::") and secrets["DAGSTER_PG_PASSWORD"].endswith(":password::")
        assert not {"DAGSTER_PG_PASSWORD", "DAGSTER_PG_USERNAME"} & set(env)
        assert env["DAGSTER_HOME"] == contract.IMAGE_DAGSTER_HOME
        assert env["DAGSTER_PG_DB"] == "dagster"
        assert env["DAGSTER_COMPUTE_LOG_PREFIX"] == "dagster-compute-logs"
        assert "<DatabaseB269D8BB.Endpoint.Address>" == flatten(env["DAGSTER_PG_HOST"])
    # the webserver and the daemon name the run task definition's exact revision; the run task its family
    envs = {role: _env(_container(td)) for role, td in _task_definitions(raw).items()}
    assert flatten(envs[DAEMON]["DAGSTER_RUN_TASK_DEFINITION"]).startswith("<RunTaskDefinition")
    assert envs[WEB]["DAGSTER_RUN_TASK_DEFINITION"] == envs[DAEMON]["DAGSTER_RUN_TASK_DEFINITION"]
    assert envs[RUN]["DAGSTER_RUN_TASK_DEFINITION"] == synth.built.orchestration.run_family


def test_containers_get_the_platforms_environment(synth):
    """The ECOMMERCE_* values are the access stack's outputs (one source: deployment_environment)."""
    access_outputs = synth.raw[synth.built.access.stack_name]["Outputs"]
    expected = {env_name: access_outputs[oid]["Value"] for oid, env_name in contract.OUTPUT_ENV.items()}
    for role, td in _task_definitions(_raw(synth)).items():
        env = _env(_container(td))
        assert {k: env[k] for k in expected} == expected, role
        assert env["ECOMMERCE_DEPLOYMENT"] == "aws" and env["AWS_REGION"] == REGION


def test_the_image_matches_the_stack():
    """deploy/Dockerfile puts the instance file where DAGSTER_HOME points and serves the workspace the
    services load; it runs as a non-root user."""
    dockerfile = contract.DOCKERFILE.read_text()
    assert f"COPY deploy/aws/dagster.yaml {contract.IMAGE_DAGSTER_HOME}/dagster.yaml" in dockerfile
    assert "COPY data/reference /app/data/reference" in dockerfile
    assert re.search(r"^USER (?!root|0\b)\S+", dockerfile, re.M)
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    assert cmd == "[" + ", ".join(f'"{c}"' for c in contract.WEBSERVER_COMMAND) + "]"
    assert (contract.REPO_ROOT / "workspace.yaml").is_file() and contract.IMAGE_WORKSPACE == "/app/workspace.yaml"


# --- services and the load balancer ---------------------------------------------------------------------
def test_two_private_services_one_daemon_at_a_time(synth):
    services = {lid: r["Properties"] for lid, r in resources_of(_raw(synth), "AWS::ECS::Service").items()}
    assert len(services) == 2
    web = next(p for lid, p in services.items() if lid.startswith("Webserver"))
    daemon = next(p for lid, p in services.items() if lid.startswith("Daemon"))
    for props in (web, daemon):
        assert props["LaunchType"] == "FARGATE" and props["DesiredCount"] == 1
        net = props["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert net["AssignPublicIp"] == "DISABLED"
        assert all("private" in flatten(s).lower() for s in net["Subnets"])
        assert props["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert daemon["DeploymentConfiguration"]["MaximumPercent"] == 100
    assert daemon["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    assert web["EnableExecuteCommand"] is True and "EnableExecuteCommand" not in daemon
    assert web["LoadBalancers"][0]["ContainerName"] == WEB and web["LoadBalancers"][0]["ContainerPort"] == 3000


def test_internal_load_balancer_reachable_only_from_allowed_ranges(synth):
    raw = _raw(synth)
    alb = one(raw, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    assert alb["Scheme"] == "internal"
    attrs = {a["Key"]: a["Value"] for a in alb["LoadBalancerAttributes"]}
    assert attrs["access_logs.s3.enabled"] == "true" and attrs["access_logs.s3.prefix"] == "ui-load-balancer"
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"
    listener = one(raw, "AWS::ElasticLoadBalancingV2::Listener")["Properties"]
    assert (listener["Port"], listener["Protocol"]) == (80, "HTTP")
    target = one(raw, "AWS::ElasticLoadBalancingV2::TargetGroup")["Properties"]
    assert target["Port"] == 3000 and target["HealthCheckPath"] == "/server_info" and target["TargetType"] == "ip"
    # no security group admits the internet; the UI's admits the VPC's range on the listener port
    ingress = [g for r in resources_of(raw, "AWS::EC2::SecurityGroup").values()
               for g in r["Properties"].get("SecurityGroupIngress", [])]
    ingress += [r["Properties"] for r in resources_of(raw, "AWS::EC2::SecurityGroupIngress").values()]
    assert all(g.get("CidrIp") not in ("0.0.0.0/0",) and g.get("CidrIpv6") != "::/0" for g in ingress)
    assert [(g["CidrIp"], g["FromPort"]) for g in ingress if "CidrIp" in g] == [("10.40.0.0/16", 80)]


def test_https_listener_and_allowed_ranges_from_context(tmp_path):
    cert = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/abc"
    s = synthesize(tmp_path, {"account": ACCOUNT, "region": REGION, "certificate_arn": cert,
                              "ui_allowed_cidrs": "10.8.0.0/16,192.168.10.0/24"})
    raw = s.raw[s.built.orchestration.stack_name]
    listener = one(raw, "AWS::ElasticLoadBalancingV2::Listener")["Properties"]
    assert (listener["Port"], listener["Protocol"]) == (443, "HTTPS")
    assert listener["Certificates"] == [{"CertificateArn": cert}] and listener["SslPolicy"]
    ui_group = next(r["Properties"] for lid, r in resources_of(raw, "AWS::EC2::SecurityGroup").items()
                    if lid.startswith("UiLoadBalancer"))
    assert sorted((g["CidrIp"], g["FromPort"]) for g in ui_group["SecurityGroupIngress"]) == [
        ("10.8.0.0/16", 443), ("192.168.10.0/24", 443)]
    assert s.raw[s.built.orchestration.stack_name]["Outputs"]["DagsterWebserverUrl"]["Value"]["Fn::Join"][1][0] == "https://"


# --- the database ---------------------------------------------------------------------------------------
def test_encrypted_private_postgres_with_its_secret(synth):
    raw = _raw(synth)
    db = one(raw, "AWS::RDS::DBInstance")
    props = db["Properties"]
    assert props["Engine"] == "postgres" and props["EngineVersion"] == "16"
    assert props["StorageEncrypted"] is True and props["PubliclyAccessible"] is False
    assert props["DeletionProtection"] is True and props["BackupRetentionPeriod"] == 7
    assert props["MultiAZ"] is False and props["DBName"] == "dagster"
    assert props["EnableCloudwatchLogsExports"] == ["postgresql"]
    assert db["DeletionPolicy"] == "Snapshot"
    assert "{{resolve:secretsmanager:" in flatten(props["MasterUserPassword"])
    params = one(raw, "AWS::RDS::DBParameterGroup")["Properties"]["Parameters"]
    assert params["rds.force_ssl"] == "1"
    subnets = one(raw, "AWS::RDS::DBSubnetGroup")["Properties"]["SubnetIds"]
    assert subnets and all("database" in flatten(s).lower() for s in subnets)
    # reachable on its port from the webserver's and the daemon's security groups only
    rules = [r["Properties"] for r in resources_of(raw, "AWS::EC2::SecurityGroupIngress").values()
             if "Database" in flatten(r["Properties"]["GroupId"])]
    sources = sorted(flatten(r["SourceSecurityGroupId"]) for r in rules)
    assert len(sources) == 2 and "Webserver" in sources[1] and "Daemon" in sources[0]
    assert all(r["FromPort"] == r["ToPort"] for r in rules)
    secret = one(raw, "AWS::SecretsManager::Secret")["Properties"]
    assert '"username":"dagster_admin"' in secret["GenerateSecretString"]["SecretStringTemplate"]


def test_database_settings_from_context(tmp_path):
    s = synthesize(tmp_path, {"account": ACCOUNT, "db_multi_az": "true", "db_deletion_protection": "false",
                              "db_instance_class": "t4g.small", "container_insights": "false"})
    raw = s.raw[s.built.orchestration.stack_name]
    props = one(raw, "AWS::RDS::DBInstance")["Properties"]
    assert props["MultiAZ"] is True and props["DeletionProtection"] is False
    assert props["DBInstanceClass"] == "db.t4g.small"
    rules = [r["id"] for r in one(raw, "AWS::RDS::DBInstance")["Metadata"]["cdk_nag"]["rules_to_suppress"]]
    assert "AwsSolutions-RDS3" not in rules and "AwsSolutions-RDS10" in rules
    cluster = one(raw, "AWS::ECS::Cluster")["Properties"]
    assert {"Name": "containerInsights", "Value": "disabled"} in cluster["ClusterSettings"]


# --- buckets, logs, network -------------------------------------------------------------------------------
def test_buckets_private_encrypted_and_expiring(synth):
    raw = _raw(synth)
    buckets = resources_of(raw, "AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert all(props["PublicAccessBlockConfiguration"].values())
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "AES256"}
        assert bucket["DeletionPolicy"] == "Retain"
    compute = next(b["Properties"] for lid, b in buckets.items() if lid.startswith("ComputeLogs"))
    (rule,) = compute["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == "dagster-compute-logs/" and rule["ExpirationInDays"] == 90
    assert compute["LoggingConfiguration"]["LogFilePrefix"] == "compute-logs-bucket/"
    for policy in resources_of(raw, "AWS::S3::BucketPolicy").values():
        conditions = [s.get("Condition") for s in policy["Properties"]["PolicyDocument"]["Statement"]]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions


def test_every_log_group_has_a_retention(synth):
    groups = resources_of(_raw(synth), "AWS::Logs::LogGroup")
    assert len(groups) == 6  # webserver, daemon, run, database, VPC flow logs, ECS Exec sessions
    assert all(g["Properties"]["RetentionInDays"] == 90 for g in groups.values())
    names = [g["Properties"].get("LogGroupName") for g in groups.values()]
    assert "/aws/rds/instance/ecommerceorchestration-dagster/postgresql" in names


def test_network_nat_endpoint_and_flow_logs(synth):
    raw = _raw(synth)
    assert len(resources_of(raw, "AWS::EC2::NatGateway")) == 1
    endpoint = one(raw, "AWS::EC2::VPCEndpoint")["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway" and "s3" in flatten(endpoint["ServiceName"])
    assert one(raw, "AWS::EC2::FlowLog")["Properties"]["TrafficType"] == "ALL"
    cluster = one(raw, "AWS::ECS::Cluster")["Properties"]
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["ClusterSettings"]


# --- roles: the Dagster role's grants split three ways -----------------------------------------------------
def test_task_roles_trust_ecs_tasks_of_this_account_only(synth):
    raw = _raw(synth)
    roles = {lid: r["Properties"] for lid, r in resources_of(raw, "AWS::IAM::Role").items() if "TaskRole" in lid}
    assert len(roles) == 3
    for props in roles.values():
        assert "ManagedPolicyArns" not in props
        (statement,) = props["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}


def test_webserver_reads_logs_and_stops_runs_but_never_touches_the_lake(synth):
    st = _policy(_raw(synth), WEB)
    assert set(st) == {"ComputeLogsRead", "ComputeLogsList", "WatchRuns", "DescribeOnly"}
    assert _actions(st) == {"s3:GetObject", "s3:DeleteObject", "s3:ListBucket", "ecs:DescribeTasks", "ecs:StopTask",
                            "ecs:DescribeTaskDefinition"}
    assert "ComputeLogsBucket" in flatten(st["ComputeLogsRead"]["Resource"])
    assert flatten(st["ComputeLogsRead"]["Resource"]).endswith("/dagster-compute-logs/*")
    assert all("LakeBucket" not in flatten(s["Resource"]) and "import" not in flatten(s["Resource"]) for s in st.values())


def test_daemon_launches_run_tasks_only(synth):
    raw = _raw(synth)
    st = _policy(raw, DAEMON)
    assert flatten(st["LaunchRuns"]["Resource"]).endswith(
        f":task-definition/{synth.built.orchestration.run_family}:*")
    assert st["LaunchRuns"]["Action"] == "ecs:RunTask"
    assert "ecs:cluster" in st["LaunchRuns"]["Condition"]["ArnEquals"]
    passed = sorted(flatten(r) for r in as_list(st["PassRunRoles"]["Resource"]))
    assert passed == ["<RunTaskDefinitionExecutionRole1CC4A6BD.Arn>", "<RunTaskRole5BD2D1A1.Arn>"] or (
        len(passed) == 2 and all("Run" in p for p in passed)), passed
    assert st["PassRunRoles"]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    # reads the lake (its sensors), writes none of it, and has none of the platform's other grants
    assert st["LakeRead"]["Action"] == "s3:GetObject" and flatten(st["LakeRead"]["Resource"]).endswith("/lake/*")
    lake_writes = [s for s in st.values() if "s3:PutObject" in as_list(s["Action"]) and "import" in flatten(s["Resource"])]
    assert lake_writes == []
    assert not any(a.startswith(("glue:", "athena:", "kinesis:")) for a in _actions(st))


def test_run_tasks_have_the_platforms_grants(synth):
    raw = _raw(synth)
    run = _policy(raw, RUN)
    dagster_role = {s["Sid"]: s for r in resources_of(synth.raw[synth.built.access.stack_name], "AWS::IAM::Policy").values()
                    for s in r["Properties"]["PolicyDocument"]["Statement"]}
    assert set(run) == set(dagster_role) | {"ComputeLogsWrite", "ComputeLogsList"}
    for sid, statement in dagster_role.items():
        assert sorted(as_list(run[sid]["Action"])) == sorted(as_list(statement["Action"])), sid
    assert not {"ecs:RunTask", "iam:PassRole"} & _actions(run)
    assert flatten(run["LakeObjects"]["Resource"]).endswith("/lake/*")


def test_no_wildcard_actions_and_star_resources_only_where_aws_allows_nothing_else(synth):
    raw = _raw(synth)
    for logical_id, res in resources_of(raw, "AWS::IAM::Policy").items():
        for s in res["Properties"]["PolicyDocument"]["Statement"]:
            actions = as_list(s["Action"])
            if logical_id.startswith(("Webserver", "Daemon", "Run")) and "TaskPolicy" in logical_id:
                assert all("*" not in a for a in actions), (logical_id, actions)
            if s["Resource"] == "*":
                allowed = {"ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces", "ecr:GetAuthorizationToken",
                           "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                           "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel", "logs:DescribeLogGroups"}
                assert set(actions) <= allowed, (logical_id, actions)


# --- outputs --------------------------------------------------------------------------------------------
def test_outputs_are_the_deployments_settings(synth):
    outputs = _raw(synth)["Outputs"]
    assert set(contract.ORCHESTRATION_OUTPUT_ENV) <= set(outputs)
    for output_id, env_name in contract.ORCHESTRATION_OUTPUT_ENV.items():
        assert outputs[output_id]["Description"] == env_name
    assert outputs["DagsterPgDb"]["Value"] == "dagster"
    assert outputs["DagsterComputeLogPrefix"]["Value"] == "dagster-compute-logs"
    assert flatten(outputs["DagsterRunTaskDefinition"]["Value"]).startswith("<RunTaskDefinition")
    assert flatten(outputs["DagsterWebserverUrl"]["Value"]).startswith("http://<UiLoadBalancer")
    # the containers get the very same values
    env = _env(_container(_task_definitions(_raw(synth))[DAEMON]))
    for output_id, env_name in contract.ORCHESTRATION_OUTPUT_ENV.items():
        if env_name in env:
            assert outputs[output_id]["Value"] == env[env_name], env_name
    registry = synth.raw[synth.built.registry.stack_name]
    assert registry["Outputs"]["EcommerceImageRepository"]["Description"] == "ECOMMERCE_IMAGE_REPOSITORY"


def test_registry_scans_and_keeps_images(synth):
    raw = synth.raw[synth.built.registry.stack_name]
    repo = one(raw, "AWS::ECR::Repository")
    props = repo["Properties"]
    assert props["RepositoryName"] == "ecommerce-platform"
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert "countNumber\":20" in props["LifecyclePolicy"]["LifecyclePolicyText"].replace(" ", "")
    assert repo["DeletionPolicy"] == "Retain"


# --- settings -------------------------------------------------------------------------------------------
def test_orchestration_settings_are_validated():
    get = {}.get
    s = load_orchestration_settings(get)
    assert (s.run.cpu, s.run.memory_mib, s.image_tag, s.db_multi_az) == (2048, 8192, "latest", False)
    bad = [
        {"run_cpu": 3000},
        {"run_cpu": 1024, "run_memory_mib": 16384},
        {"vpc_cidr": "10.0.0.0/33"},
        {"image_tag": "has space"},
        {"db_multi_az": "maybe"},
        {"db_instance_class": "db t4g"},
        {"certificate_arn": "not-an-arn"},
        {"max_azs": 1},
    ]
    for context in bad:
        with pytest.raises(InfraConfigError, match=next(iter(context))):
            load_orchestration_settings(context.get)
