#!/usr/bin/env bash
# `pulumi preview` or `pulumi up` for each stack of a CI shard, one after the other (see docs/ci.md):
# the job of a shard that holds several stacks, once the changed stacks outnumber GitHub's 256
# jobs of a matrix. Every stack runs even when one fails; the exit status says whether any failed.
#   STACKS='["a","b"]' [PULUMI_ORG=org] [PULUMI_BACKEND_URL=...] bash scripts/pulumi_each.sh preview|up
set -uo pipefail
command="${1:?usage: pulumi_each.sh preview|up}"
case "$command" in
  preview) flags=(preview --diff --policy-pack policy) ;;
  up) flags=(up --yes --diff --policy-pack policy) ;;
  *) echo "pulumi_each.sh: unknown command $command (preview or up)" >&2; exit 2 ;;
esac
# An empty PULUMI_BACKEND_URL logs in to Pulumi Cloud with PULUMI_ACCESS_TOKEN.
pulumi login ${PULUMI_BACKEND_URL:+"$PULUMI_BACKEND_URL"} || exit 1
mapfile -t stacks < <(jq -r '.[]' <<<"${STACKS:?a JSON list of stack names}")
failed=()
for stack in "${stacks[@]}"; do
  echo "::group::pulumi $command $stack"
  if ! pulumi "${flags[@]}" --stack "${PULUMI_ORG:+$PULUMI_ORG/}$stack"; then
    failed+=("$stack")
  fi
  echo "::endgroup::"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "::error::pulumi $command failed for: ${failed[*]}"
  exit 1
fi
