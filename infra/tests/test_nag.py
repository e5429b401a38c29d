"""cdk-nag's AwsSolutions rules pass, and every suppression says why."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks


def _findings(stack, level: str) -> list[str]:
    annotations = Annotations.from_stack(stack)
    finder = annotations.find_error if level == "error" else annotations.find_warning
    return [f"{m.id}: {str(m.entry.data)[:160]}" for m in finder("*", Match.string_like_regexp("AwsSolutions-.*"))]


@pytest.mark.parametrize("which", ["synth", "synth_agnostic"])
def test_no_aws_solutions_errors_or_warnings(which, request):
    built = request.getfixturevalue(which).built
    for stack in built.stacks:
        assert _findings(stack, "error") == [], stack.stack_name
        assert _findings(stack, "warning") == [], stack.stack_name


def test_every_suppression_has_a_reason(synth):
    seen = 0
    for name, template in synth.raw.items():
        for logical_id, res in template["Resources"].items():
            for rule in res.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                seen += 1
                assert rule["id"].startswith("AwsSolutions-"), (name, logical_id)
                assert len(rule["reason"]) >= 40, (name, logical_id, rule)
    assert seen >= 6  # the IAM5/IAM4/S1/KDF1 suppressions documented in the stacks


def test_no_blanket_suppressions(synth):
    """Suppressions sit on single resources and IAM5 ones name what they allow (applies_to)."""
    for name, template in synth.raw.items():
        assert "cdk_nag" not in template.get("Metadata", {}), f"{name} has a stack-wide suppression"
        for res in template["Resources"].values():
            for rule in res.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                if rule["id"] in ("AwsSolutions-IAM5", "AwsSolutions-IAM4"):
                    assert rule.get("applies_to"), rule


def test_the_checks_do_catch_an_insecure_bucket(tmp_path):
    """The same wiring flags a bucket without TLS enforcement or logging (the test can fail)."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Insecure")
    s3.Bucket(stack, "Open")
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    app.synth()
    errors = _findings(stack, "error")
    assert any(e.startswith("AwsSolutions-S10") or "AwsSolutions-S10" in e for e in errors)
    assert any("AwsSolutions-S1" in e for e in errors)
