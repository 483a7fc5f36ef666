"""The Kubernetes names a stack generates besides `model.deployName` itself, and why two stacks of
one namespace can never generate the same one.

Every generated name is `<deployName><suffix>`, where the suffix is fixed for its role (`-model`,
`-epp`, `-scripts-<hash>`, ...). Two stacks `D` and `D-u` of one namespace would collide when a
suffix of one kind is `-u` followed by another suffix of that kind: `D` + `-epp` (the picker's
Deployment) is `D-epp` + `` (the server's Deployment of a stack named `D-epp`). So:

- a distinguishing part goes after the role word, never before it: an adapter's Job is
  `D-download-a0-<hash>`, which no deployName followed by `-download-<hash>` can spell
  (`-a0-<hash>` does not end in `-download-<hash>`);
- where a role's whole suffix is one word beside a bare `D` of the same kind (the picker's
  Deployment, Service and ServiceMonitor beside the server's; the headless Service the
  LeaderWorkerSet controller makes, named after the LeaderWorkerSet, beside the model's Service),
  a deployName may not end in that word: RESERVED_SUFFIXES, refused by config.

tests/test_names.py derives every kind's suffixes from rendered stacks and checks the rule.
"""

from __future__ import annotations

# The suffixes a deployName may not end in, each with what it names in another stack.
RESERVED_SUFFIXES: dict[str, str] = {
    "-epp": "the endpoint picker of a routed stack (its Deployment, Service and ServiceMonitor)",
    "-group": "the LeaderWorkerSet of a multi-node stack and the headless Service its controller makes",
}


def picker_name(deploy_name: str) -> str:
    """The routing endpoint picker's Deployment, Service, ServiceAccount, Role and ConfigMap."""
    return f"{deploy_name}-epp"


def group_name(deploy_name: str) -> str:
    """A multi-node server's LeaderWorkerSet. Not `deployName`: the LeaderWorkerSet controller makes
    a headless Service named after the LeaderWorkerSet (kubernetes-sigs/lws,
    pkg/controllers/leaderworkerset_controller.go, `reconcileHeadlessServices`, subdomain policy
    Shared), which would take the model's Service name; its pods are `<group>-<i>` (leaders) and
    `<group>-<i>-<j>` (workers)."""
    return f"{deploy_name}-group"


def adapter_tag(adapter_index: int | None) -> str:
    """`-a<index>` for the LoRA adapter at that index of lora.adapters; empty for the model."""
    return "" if adapter_index is None else f"-a{adapter_index}"


def download_names(deploy_name: str, adapter_index: int | None, scripts_hash: str, job_hash: str) -> tuple[str, str]:
    """(scripts ConfigMap, Job) of the model's download (adapter_index None) or of a LoRA adapter's.

    The adapter's tag follows the role word: `D-a0-download-<hash>` was also what a stack named
    `D-a0` renders for its model."""
    tag = adapter_tag(adapter_index)
    return f"{deploy_name}-scripts{tag}-{scripts_hash}", f"{deploy_name}-download{tag}-{job_hash}"


def reserved_suffix_problem(deploy_name: str) -> str | None:
    """Why deploy_name would collide with another stack's generated names; None when it cannot."""
    for suffix, what in RESERVED_SUFFIXES.items():
        if deploy_name.endswith(suffix):
            owner = deploy_name[: -len(suffix)]
            return (
                f"'{deploy_name}' ends in '{suffix}': a stack named '{owner}' in the same namespace gives that "
                f"name to {what}; allowed: a name that does not end in {' or '.join(RESERVED_SUFFIXES)}"
            )
    return None
