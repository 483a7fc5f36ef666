"""What `pulumi up` does with a download Job whose name did not change, given how the live Job ended.

Two sources decide it:

- pulumi-kubernetes, provider/pkg/provider/provider.go `Diff`: when the Job's inputs carry
  `pulumi.com/replaceUnready: "true"` (`metadata.ReplaceUnready`), the provider reads the live Job and,
  unless the Job checker finds it complete (provider/pkg/await/checker/job/check.go, `jobComplete`:
  the `Complete` condition), answers a replacement; the name is fixed, so it deletes the old Job before
  creating the new one (`deleteBeforeReplace`: same name, same namespace). An unreadable live Job
  (deleted by its TTL) leaves the diff as it was.
- pulumi/pulumi, pkg/resource/deploy/step_generator.go: a resource whose last update failed to
  initialize is checkpointed with init errors; when the provider finds no change, "generate an empty
  update step to attempt to 'continue' awaiting initialization": the provider re-awaits the same
  failed Job, which fails again at once.
"""

from __future__ import annotations

from typing import Any

REPLACE_UNREADY = "pulumi.com/replaceUnready"


def job_step(manifest: dict[str, Any], live_outcome: str | None) -> str:
    """"none", "replace" (delete, then create the same Job) or "reawait" (fails again at once).

    live_outcome: "Complete", "Failed", or None when the live Job is gone."""
    annotations = manifest.get("metadata", {}).get("annotations") or {}
    if annotations.get(REPLACE_UNREADY) == "true" and live_outcome not in ("Complete", None):
        return "replace"
    if live_outcome == "Failed":
        return "reawait"  # init errors, no diff: the empty update re-awaits the failed Job
    return "none"


def replace_order(old: dict[str, Any], new: dict[str, Any], delete_before_replace_option: bool) -> list[str]:
    """The steps `pulumi up` takes for a named object whose inputs went from `old` to `new`:
    [] (an update in place, or nothing), ["create", "delete"] or ["delete", "create"].

    pulumi-kubernetes, provider/pkg/provider/provider.go `Diff`: a changed `metadata.name` or
    `metadata.namespace` is a replacement (for a custom resource nothing else is: the provider knows
    no immutable fields of its spec), and the provider asks for delete-before-replace only when the
    new name and namespace equal the old (the new object could not exist beside the old one). Else
    pulumi/pulumi creates the replacement first and deletes the old object after it, unless the
    resource's own `deleteBeforeReplace` option says otherwise (pkg/resource/deploy/step_generator.go)."""
    identity = ("name", "namespace")
    old_id = tuple(old["metadata"].get(key) for key in identity)
    new_id = tuple(new["metadata"].get(key) for key in identity)
    if old_id == new_id:
        return []
    return ["delete", "create"] if delete_before_replace_option else ["create", "delete"]


def gpus_needed_at_once(order: list[str], old_gpus: int, new_gpus: int) -> int:
    """The GPUs the replacement holds at its peak: both objects' while the new one starts beside the old."""
    return old_gpus + new_gpus if order[:1] == ["create"] else max(old_gpus, new_gpus)
