"""cdk-nag suppressions as typed structs (a plain dict's ``applies_to`` key would be silently
dropped by jsii, turning a narrow suppression into a blanket one)."""

from __future__ import annotations

import re

from cdk_nag import NagPackSuppression, RegexAppliesTo


def suppression(rule: str, reason: str, applies_to: list[str | RegexAppliesTo] | None = None) -> NagPackSuppression:
    return NagPackSuppression(id=rule, reason=reason, applies_to=applies_to)


def finding(pattern: str) -> RegexAppliesTo:
    """Matches finding texts such as ``Resource::<arn>/lake/raw/stream/*`` (pattern is a regex)."""
    return RegexAppliesTo(regex=f"/^{pattern}$/")


def object_wildcard(folder: str) -> RegexAppliesTo:
    """The IAM5 finding of ``<bucket arn>/<folder>*``."""
    return finding(f"Resource::.*/{re.escape(folder)}\\*")
