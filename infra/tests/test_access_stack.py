"""The Dagster role: exactly the actions the platform uses, on exactly its resources."""

from __future__ import annotations

from conftest import ACCOUNT, REGION, as_list, flatten, one, policy_statements, resources_of, synthesize

from ecommerce_infra import contract


def _raw(synth):
    return synth.raw[synth.built.access.stack_name]


def _statements(synth) -> dict[str, dict]:
    return {s["Sid"]: s for s in policy_statements(_raw(synth), "DagsterPolicy")}


def test_role_has_no_managed_or_wildcard_permissions(synth):
    role = one(_raw(synth), "AWS::IAM::Role")["Properties"]
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    for s in _statements(synth).values():
        assert s["Effect"] == "Allow"
        for action in as_list(s["Action"]):
            assert "*" not in action, action
        for resource in as_list(s["Resource"]):
            assert resource != "*"


def test_role_statements(synth):
    st = _statements(synth)
    assert set(st) == {"LakeObjects", "AthenaResults", "LakeBucket", "GlueCatalog", "AthenaWorkgroup", "Stream"}
    assert flatten(st["LakeObjects"]["Resource"]).endswith("/lake/*")
    assert "s3:DeleteObject" in st["LakeObjects"]["Action"]
    assert flatten(st["AthenaResults"]["Resource"]).endswith("/athena-results/*")
    assert "s3:DeleteObject" not in st["AthenaResults"]["Action"]
    assert "s3:ListBucket" in st["LakeBucket"]["Action"]
    assert not flatten(st["LakeBucket"]["Resource"]).endswith("*")

    glue = sorted(flatten(r) for r in st["GlueCatalog"]["Resource"])
    base = f"arn:<AWS::Partition>:glue:{REGION}:{ACCOUNT}"
    assert glue == sorted([f"{base}:catalog", f"{base}:database/ecommerce", f"{base}:table/ecommerce/*"])
    assert "glue:GetTable" in st["GlueCatalog"]["Action"]
    assert "glue:BatchCreatePartition" in st["GlueCatalog"]["Action"]

    assert flatten(st["AthenaWorkgroup"]["Resource"]) == (
        f"arn:<AWS::Partition>:athena:{REGION}:{ACCOUNT}:workgroup/ecommerce"
    )
    assert {"athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"} <= set(
        st["AthenaWorkgroup"]["Action"]
    )
    assert "<import:" in flatten(st["Stream"]["Resource"])
    assert {"kinesis:PutRecords", "kinesis:GetRecords", "kinesis:GetShardIterator"} <= set(st["Stream"]["Action"])
    assert not any(a.startswith("kinesis:Create") or a.startswith("kinesis:Delete") for a in st["Stream"]["Action"])


def test_trust_defaults_to_the_account(synth):
    trust = one(_raw(synth), "AWS::IAM::Role")["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [flatten(s["Principal"]["AWS"]) for s in trust] == [f"arn:<AWS::Partition>:iam::{ACCOUNT}:root"]


def test_trust_from_context(tmp_path):
    s = synthesize(
        tmp_path,
        {
            "account": ACCOUNT,
            "dagster_trusted_arns": f"arn:aws:iam::{ACCOUNT}:role/dagster-host",
            "dagster_trusted_services": "ecs-tasks.amazonaws.com",
        },
    )
    trust = one(s.raw[s.built.access.stack_name], "AWS::IAM::Role")["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {
        "AWS": f"arn:aws:iam::{ACCOUNT}:role/dagster-host",
        "Service": "ecs-tasks.amazonaws.com",
    }


def test_outputs_are_exactly_the_deployment_environment(synth):
    outputs = _raw(synth)["Outputs"]
    env_outputs = {k: v for k, v in outputs.items() if k != "DagsterRoleArn"}
    assert set(env_outputs) == set(contract.OUTPUT_ENV)
    assert {v["Description"] for v in env_outputs.values()} == {
        "ECOMMERCE_DEPLOYMENT",
        "ECOMMERCE_S3_BUCKET",
        "ECOMMERCE_S3_PREFIX",
        "ECOMMERCE_GLUE_DATABASE",
        "ECOMMERCE_ATHENA_WORKGROUP",
        "ECOMMERCE_ATHENA_OUTPUT",
        "ECOMMERCE_STREAM_NAME",
        "AWS_REGION",
    }
    for output_id, env_name in contract.OUTPUT_ENV.items():
        assert outputs[output_id]["Description"] == env_name
    assert outputs["EcommerceDeployment"]["Value"] == "aws"
    assert outputs["AwsRegion"]["Value"] == REGION


def test_only_other_stacks_are_referenced(synth):
    # the access stack owns one role, one policy and nothing else
    types = sorted({r["Type"] for r in _raw(synth)["Resources"].values()})
    assert types == ["AWS::IAM::Policy", "AWS::IAM::Role"]
    assert len(resources_of(_raw(synth), "AWS::IAM::Policy")) == 1
