"""The vllm-serving policy pack: `pulumi preview --policy-pack policy`.

Only wiring: the checks are plain functions in rules.py, so tests can run them
without an engine. Every policy is mandatory: each guards against a deployment
that would fail or leak credentials, so a violation must stop `pulumi up`.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

try:
    from . import rules  # imported as the package `policy` (the tests)
except ImportError:
    # Run by the analyzer (`python -m pulumi.policy <engine> <pack dir>`), which runs this
    # directory's __main__ with the directory itself on sys.path and no parent package.
    import rules  # type: ignore[no-redef, import-not-found]  # mypy sees only the package form above

PACK_NAME = "vllm-serving"


def _validator(check: rules.Check):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props):
            report_violation(message, None)

    return validate


def build_policies() -> list[Policy]:
    return [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=_validator(rule.check),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for rule in rules.RULES
    ]


if __name__ == "__main__":
    # PolicyPack serves the analyzer's gRPC API and never returns: build it only when run as the pack.
    PolicyPack(name=PACK_NAME, policies=build_policies(), enforcement_level=EnforcementLevel.MANDATORY)
