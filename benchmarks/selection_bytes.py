"""Bytes each source downloads, against what vLLM loads, on real repositories' file lists.

Every source runs the one selection rule, components/scripts/select_files.sh, as its Job runs it:

  huggingface  hf_download.select_files -> select_files.sh under this machine's awk (the vLLM
               image's is mawk); huggingface_hub then fetches exactly those files
  git          select_files.sh under busybox awk (alpine/git) over the checkout's paths; git-lfs
               fetches the LFS objects of those files only (--include, anchored)
  s3           select_files.sh under busybox awk (rclone/rclone) over the prefix's listing;
               rclone copies those keys only (--files-from-raw)

For each repository of tests/fixtures/hf_repos.yaml it prints, per source,
  selected / needed  -- bytes downloaded over bytes vLLM's default loader reads (target 1.00)
  selected / repo    -- bytes downloaded over the whole repository (what git and S3 moved before)

Sizes the Hub only displays rounded ("9.98 GB") are converted to approximate bytes in the
fixture; unknown sizes use the fixture's estimate where it gives one, else count as 0.
Figures resting on either are marked "~".

    python benchmarks/selection_bytes.py
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "components" / "scripts" / "select_files.sh"


def load_hf_download():
    spec = importlib.util.spec_from_file_location("hf_download", ROOT / "components" / "scripts" / "hf_download.py")
    if spec is None or spec.loader is None:
        raise ImportError("cannot load components/scripts/hf_download.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def busybox_rule(scratch: Path, source: str):
    """select_files.sh as the alpine images run it: busybox sh and busybox awk."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise SystemExit("busybox is needed to run the git and S3 sources' rule as their images do")
    awk = scratch / "awk"
    awk.write_text(f'#!/bin/sh\nexec {busybox} awk "$@"\n')
    awk.chmod(0o755)

    def select(paths: list[str]) -> list[str]:
        listing = scratch / "listing"
        listing.write_text("".join(f"{p}\n" for p in paths))
        env = {**os.environ, "SELECT_AWK": str(awk), "SOURCE": source, "FILES": ""}
        done = subprocess.run([busybox, "sh", str(SCRIPT), "select", str(listing)], env=env,
                              capture_output=True, text=True, check=True)
        return done.stdout.split()

    return select


def gb(size: float) -> str:
    return f"{size / 1e9:8.2f} GB"


def main() -> None:
    hf = load_hf_download()
    repos = yaml.safe_load((ROOT / "tests" / "fixtures" / "hf_repos.yaml").read_text())["repos"]
    with tempfile.TemporaryDirectory() as scratch:
        rules = {"huggingface": hf.select_files,
                 "git": busybox_rule(Path(scratch), "git"), "s3": busybox_rule(Path(scratch), "s3")}
        print(f"{'repository':38} {'source':12} {'files':>7} {'selected':>11} {'vLLM needs':>11} "
              f"{'sel/needed':>11} {'repository':>11} {'sel/repo':>9}")
        for repo in repos:
            sizes, approximate = {}, set()
            for entry in repo["files"]:
                sizes[entry["path"]] = entry["size"] if entry["size"] is not None else entry.get("estimate", 0)
                if entry["size"] is None or "display" in entry:
                    approximate.add(entry["path"])
            needed = repo["vllm_loads"]
            need, whole = sum(sizes[p] for p in needed), sum(sizes.values())
            for source, select in rules.items():
                selected = select(list(sizes))
                chosen = sum(sizes[p] for p in selected)
                mark_needed = "~" if approximate & set(selected + needed) else " "
                mark_repo = "~" if approximate else " "
                print(f"{repo['id']:38} {source:12} {len(selected):>3}/{len(sizes):<3} {gb(chosen)} {gb(need)} "
                      f"{mark_needed}{chosen / need:>9.4f}  {gb(whole)} {mark_repo}{chosen / whole:>7.3f}")
                missing = sorted(set(needed) - set(selected))
                if missing:
                    print(f"{'':51}MISSING: {', '.join(missing)}")
            extra = sorted(set(hf.select_files(list(sizes))) - set(needed))
            if extra:
                print(f"{'':51}also kept (small metadata): {', '.join(extra)} ({sum(sizes[p] for p in extra)} B)")
    print("\n~ rests on Hub display sizes (\"9.98 GB\" read as 9.98e9 B) or on estimates noted in the fixture.")


if __name__ == "__main__":
    main()
