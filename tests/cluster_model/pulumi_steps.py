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
