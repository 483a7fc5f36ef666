"""Bytes the Hugging Face download selects, against what vLLM needs and the whole repository.

For each repository of tests/fixtures/hf_repos.yaml, runs the Job's own selection rule
(select_files in components/scripts/hf_download.py) on the real file list and prints

  selected / needed  -- bytes downloaded over bytes vLLM's default loader reads (target 1.00)
  selected / repo    -- bytes downloaded over the whole repository

Sizes the Hub only displays rounded ("9.98 GB") are converted to approximate bytes in the
fixture; unknown sizes use the fixture's estimate where it gives one, else count as 0.
Figures resting on either are marked "~".

    python benchmarks/hf_selection.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_selection():
    spec = importlib.util.spec_from_file_location("hf_download", ROOT / "components" / "scripts" / "hf_download.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gb(size: float) -> str:
    return f"{size / 1e9:8.2f} GB"


def main() -> None:
    hf = load_selection()
    repos = yaml.safe_load((ROOT / "tests" / "fixtures" / "hf_repos.yaml").read_text())["repos"]
    print(f"{'repository':38} {'files':>7} {'selected':>11} {'vLLM needs':>11} {'sel/needed':>11} "
          f"{'repository':>11} {'sel/repo':>9}")
    for repo in repos:
        sizes, approximate = {}, set()
        for entry in repo["files"]:
            size = entry["size"] if entry["size"] is not None else entry.get("estimate", 0)
            sizes[entry["path"]] = size
            if entry["size"] is None or "display" in entry:
                approximate.add(entry["path"])
        selected = hf.select_files(sizes)
        needed = repo["vllm_loads"]
        chosen, need, whole = (sum(sizes[p] for p in group) for group in (selected, needed, sizes))
        mark_needed = "~" if approximate & set(selected + needed) else " "
        mark_repo = "~" if approximate else " "
        print(
            f"{repo['id']:38} {len(selected):>3}/{len(sizes):<3} {gb(chosen)} {gb(need)} "
            f"{mark_needed}{chosen / need:>9.4f}  {gb(whole)} {mark_repo}{chosen / whole:>7.3f}"
        )
        extra = sorted(set(selected) - set(needed))
        missing = sorted(set(needed) - set(selected))
        unknown = [e["path"] for e in repo["files"] if e["size"] is None and "estimate" not in e]
        if extra:
            print(f"{'':38}   also kept (small metadata): {', '.join(extra)} ({sum(sizes[p] for p in extra)} B)")
        if missing:
            print(f"{'':38}   MISSING: {', '.join(missing)}")
        if unknown:
            print(f"{'':38}   size unknown, counted as 0: {', '.join(unknown)}")
    print("\n~ rests on Hub display sizes (\"9.98 GB\" read as 9.98e9 B) or on estimates noted in the fixture.")


if __name__ == "__main__":
    main()
