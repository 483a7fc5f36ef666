"""Run a rendered pod template as local processes, with the kubelet semantics the program relies on.

A test hands it the rendered manifests (for the Secrets and ConfigMaps a pod reads) plus the
objects the stack expects to exist (existing Secrets), a directory per claim, and a pod template
taken from a Job, a Deployment or a LeaderWorkerSet leader. The runner then does what the kubelet
does with that template, as far as a process on this machine can:

- `command`/`args` with `$(VAR)` expansion (`$$(VAR)` escapes, an unknown name stays as written:
  k8s.io/kubernetes third_party/forked/golang/expansion/expand.go), `env` from values, Secrets,
  ConfigMaps (`optional` honoured) and `fieldRef`, `envFrom`, each env value expanded against the
  ones before it (kubelet_pods.go, makeEnvironmentVariables);
- every volume mount mapped to a directory: a claim (with `subPath`, created when missing as the
  kubelet does), a ConfigMap or Secret (its keys or `items`, `defaultMode`/`mode`), an `emptyDir`
  (`medium: Memory` on tmpfs), and `/dev/shm` as the machine's own tmpfs, which is what a
  process's shared memory uses whatever the mount table says. A process sees the mount paths
  through path translation: a mount path in `command`, `args`, env values and `workingDir` is
  replaced by its directory (the stand-in for a mount namespace, which needs root). `readOnly`
  mounts are checked: the runner fails the pod when anything under one changed;
- the pod's ports: each `containerPort` is given a free local port, and an argument that names the
  container port (`8000` or `--x=8000`) is translated to it (the stand-in for a network
  namespace; two servers on this machine must not share a port);
- init containers in order, each to success; then the containers, with startup, readiness and
  liveness probes exactly as specified (named ports, initial delay, period, timeout, success and
  failure thresholds; a failed startup or liveness probe kills and, under restartPolicy Always or
  OnFailure, restarts the container, as kuberuntime does);
- termination: `preStop` exec, then SIGTERM, then SIGKILL when `terminationGracePeriodSeconds`
  (counted from the start of preStop) runs out.

Images map to local stand-ins through one table, IMAGES (images.py). Every pod field the runner does
not implement fails loudly (UnsupportedPodField), except the ones listed in NOT_APPLICABLE with the
reason a local process has no use for them; nothing is silently ignored.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .images import IMAGES, ImageStandIn


class UnsupportedPodField(Exception):
    """A pod field the runner does not implement: the test must not pass by ignoring it."""


class PodFailed(Exception):
    """The pod did what a kubelet would report as a failure (init container, probe, read-only mount)."""


# Fields a process on this machine has no use for, each with the reason; any other field that is
# not implemented below raises UnsupportedPodField.
NOT_APPLICABLE = {
    "affinity": "scheduling: one machine", "tolerations": "scheduling: one machine",
    "nodeSelector": "scheduling: one machine", "topologySpreadConstraints": "scheduling: one machine",
    "priorityClassName": "scheduling: one machine", "schedulerName": "scheduling: one machine",
    "securityContext": "processes run as the test's user", "serviceAccountName": "no API server",
    "automountServiceAccountToken": "no API server", "imagePullSecrets": "no registry",
    "imagePullPolicy": "no registry", "resources": "no cgroup limits: recorded, not enforced",
    "terminationMessagePolicy": "no termination message", "terminationMessagePath": "no termination message",
    "dnsPolicy": "no cluster DNS", "enableServiceLinks": "no Services",
}
POD_SPEC_FIELDS = {"containers", "initContainers", "volumes", "restartPolicy", "terminationGracePeriodSeconds",
                   "hostname", "subdomain"}
CONTAINER_FIELDS = {"name", "image", "command", "args", "env", "envFrom", "volumeMounts", "ports", "workingDir",
                    "startupProbe", "readinessProbe", "livenessProbe", "lifecycle"}
PROBE_FIELDS = {"httpGet", "exec", "tcpSocket", "initialDelaySeconds", "periodSeconds", "timeoutSeconds",
                "successThreshold", "failureThreshold"}
MOUNT_FIELDS = {"name", "mountPath", "subPath", "readOnly"}
VOLUME_KINDS = {"persistentVolumeClaim", "configMap", "secret", "emptyDir"}
FIELD_REFS = {"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
              "status.podIP", "status.hostIP", "status.podIPs"}
POD_IP = "127.0.0.1"


def _check(where: str, mapping: dict[str, Any], implemented: set[str]) -> None:
    unknown = sorted(set(mapping) - implemented - set(NOT_APPLICABLE))
    if unknown:
        raise UnsupportedPodField(f"{where}: the pod runner does not implement {', '.join(unknown)}")


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: `$$` is a literal `$`; an undefined $(VAR) stays as written."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _REFERENCE.sub(one, text)


@dataclass
class Cluster:
    """What the API server would hold for the pod: Secrets and ConfigMaps by name (decoded), a
    directory per PersistentVolumeClaim, the namespace."""

    root: Path
    namespace: str = "default"
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    claims: dict[str, Path] = field(default_factory=dict)

    def add_manifests(self, manifests: Iterable[dict[str, Any]]) -> Cluster:
        """The rendered Secrets, ConfigMaps and claims (a claim's directory is made once and kept:
        it is the volume that outlives every pod and every update)."""
        for manifest in manifests:
            kind, name = manifest.get("kind"), manifest.get("metadata", {}).get("name")
            if kind == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in (manifest.get("data") or {}).items()}
                data.update(manifest.get("stringData") or {})
                self.secrets[name] = data
            elif kind == "ConfigMap":
                self.config_maps[name] = dict(manifest.get("data") or {})
            elif kind == "PersistentVolumeClaim":
                self.claim(name)
        return self

    def claim(self, name: str) -> Path:
        if name not in self.claims:
            self.claims[name] = self.root / "claims" / name
            self.claims[name].mkdir(parents=True, exist_ok=True)
        return self.claims[name]


def pod_template(manifest: dict[str, Any]) -> dict[str, Any]:
    """The pod template of a Job, a Deployment or a LeaderWorkerSet (its leader's)."""
    kind = manifest["kind"]
    if kind in ("Job", "Deployment", "StatefulSet"):
        return manifest["spec"]["template"]
    if kind == "LeaderWorkerSet":
        template = manifest["spec"]["leaderWorkerTemplate"]
        return template.get("leaderTemplate") or template["workerTemplate"]
    raise UnsupportedPodField(f"{kind}: the pod runner runs the pods of Jobs, Deployments and LeaderWorkerSets")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((POD_IP, 0))
        return probe.getsockname()[1]


@dataclass
class Event:
    at: float
    what: str


class Container:
    """One container's process(es) and its probes."""

    def __init__(self, pod: Pod, spec: dict[str, Any], init: bool):
        self.pod, self.spec, self.init = pod, spec, init
        self.name = spec["name"]
        _check(f"container {self.name}", spec, CONTAINER_FIELDS)
        if init:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe", "lifecycle"):
                if probe in spec:
                    raise UnsupportedPodField(f"init container {self.name}: {probe} (not valid on an init container)")
        lifecycle = spec.get("lifecycle", {})
        if set(lifecycle) - {"preStop"} or set(lifecycle.get("preStop", {"exec": 0})) != {"exec"}:
            raise UnsupportedPodField(f"container {self.name}: lifecycle {lifecycle} (only a preStop exec is implemented)")
        image = spec.get("image", "")
        if image not in IMAGES:
            raise UnsupportedPodField(f"container {self.name}: no local stand-in for image {image!r} "
                                      f"(tests/pod_runner/images.py maps {', '.join(sorted(IMAGES))})")
        self.image: ImageStandIn = IMAGES[image]()
        self.ports = {port.get("name", str(int(port["containerPort"]))): int(port["containerPort"])
                      for port in spec.get("ports", [])}
        for port in spec.get("ports", []):
            unknown = set(port) - {"name", "containerPort", "protocol"}
            if unknown or port.get("protocol", "TCP") != "TCP":
                raise UnsupportedPodField(f"container {self.name}: port fields {sorted(unknown) or port['protocol']}")
        self.env = self._environment()
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.ready = False
        self.started = False
        self.log_path = pod.workdir / f"{self.name}.log"

    # --- environment and command line ----------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        pod = self.pod
        env: dict[str, str] = {}
        for source in self.spec.get("envFrom", []):
            unknown = set(source) - {"configMapRef", "secretRef", "prefix"}
            if unknown:
                raise UnsupportedPodField(f"container {self.name}: envFrom {sorted(unknown)}")
            ref = source.get("configMapRef") or source.get("secretRef")
            store = pod.cluster.config_maps if "configMapRef" in source else pod.cluster.secrets
            if ref["name"] not in store:
                if ref.get("optional"):
                    continue
                raise PodFailed(f"container {self.name}: envFrom {ref['name']} does not exist")
            env.update({source.get("prefix", "") + k: v for k, v in store[ref["name"]].items()})
        for variable in self.spec.get("env", []):
            name = variable["name"]
            if "value" in variable or "valueFrom" not in variable:
                env[name] = expand(str(variable.get("value", "")), env)
                continue
            value = self._value_from(name, variable["valueFrom"])
            if value is not None:
                env[name] = value
        # What the kubelet adds: the pod's host name (there is no Service environment: no Services).
        env.setdefault("HOSTNAME", pod.name)
        return env

    def _value_from(self, name: str, source: dict[str, Any]) -> str | None:
        pod = self.pod
        (kind, ref), = source.items()
        if kind in ("secretKeyRef", "configMapKeyRef"):
            store = pod.cluster.secrets if kind == "secretKeyRef" else pod.cluster.config_maps
            data = store.get(ref["name"])
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    return None
                raise PodFailed(f"container {self.name}: env {name}: {kind} {ref['name']}/{ref['key']} does not exist "
                                "(the kubelet would report CreateContainerConfigError)")
            return data[ref["key"]]
        if kind == "fieldRef":
            path = ref["fieldPath"]
            label = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
            if label:
                return pod.metadata.get(label.group(1), {}).get(label.group(2), "")
            if path not in FIELD_REFS:
                raise UnsupportedPodField(f"container {self.name}: env {name}: fieldRef {path}")
            return {"metadata.name": pod.name, "metadata.namespace": pod.cluster.namespace,
                    "metadata.uid": pod.uid, "spec.nodeName": socket.gethostname(),
                    "spec.serviceAccountName": pod.spec.get("serviceAccountName", "default"),
                    "status.podIP": POD_IP, "status.podIPs": POD_IP, "status.hostIP": POD_IP}[path]
        raise UnsupportedPodField(f"container {self.name}: env {name}: valueFrom {kind}")

    def translate(self, text: str) -> str:
        """Mount paths to their directories, container ports to the pod's local ports."""
        if not self.mounts:
            return text
        # One pass, longest mount path first: a translated directory is never translated again.
        directories = dict(self.mounts)
        alternatives = "|".join(re.escape(path) for path, _ in self.mounts)
        pattern = rf"(?<![\w./-])({alternatives})(?=$|[/\s:;\"'])"
        return re.sub(pattern, lambda match: str(directories[match.group(1)]), text)

    def translate_argument(self, argument: str) -> str:
        argument = self.translate(argument)
        for container_port, local_port in self.pod.port_map.items():
            argument = re.sub(rf"(^|=){container_port}$", rf"\g<1>{local_port}", argument)
        return argument

    def argv(self) -> list[str]:
        command = self.spec.get("command") or self.image.entrypoint
        if not command:
            raise UnsupportedPodField(f"container {self.name}: no command and image {self.spec['image']} has no entrypoint")
        args = self.spec.get("args", [] if self.spec.get("command") else self.image.default_args)
        expanded = [expand(part, self.env) for part in [*command, *args]]
        return self.image.resolve([self.translate_argument(part) for part in expanded])

    def process_env(self) -> dict[str, str]:
        env = {k: self.translate(v) for k, v in self.env.items()}
        for key, value in self.image.env.items():
            env.setdefault(key, value)
        # The container's own writable layer: its HOME and /tmp start empty with each pod and are
        # nobody else's (vLLM's compile cache and torch inductor's headers live there unless the
        # pod mounts something), as in a cluster, where nothing of the node's /root or /tmp is seen.
        # Short paths: vLLM binds unix sockets under TMPDIR, whose paths may not exceed 107 bytes.
        for key, directory in (("HOME", "root"), ("TMPDIR", "tmp")):
            if key not in env:
                env[key] = str(self.pod.rootfs / directory)
                Path(env[key]).mkdir(parents=True, exist_ok=True)
        for key, value in self.image.runner_additions.items():
            if key in self.env:
                raise PodFailed(f"container {self.name}: the pod sets {key}, which the runner adds for "
                                f"{self.spec['image']}'s stand-in (images.py): decide which one wins there")
            env[key] = value
        return env

    @property
    def mounts(self) -> list[tuple[str, Path]]:
        return self.pod.mounts_of[self.name]

    # --- the process -----------------------------------------------------------------------------

    def start(self) -> None:
        working_dir = self.translate(self.spec.get("workingDir", "")) or str(self.pod.workdir)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv(), env=self.process_env(), cwd=working_dir, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.pod.event(f"{self.name}: started (pid {self.process.pid})")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """SIGTERM goes to the container's main process only, as the runtime sends it to PID 1 (the
        process passes it on, or not); SIGKILL takes every process of the container, as the runtime
        kills the whole cgroup."""
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if sig == signal.SIGKILL:
                    os.killpg(self.process.pid, sig)
                else:
                    os.kill(self.process.pid, sig)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def exec(self, command: list[str], timeout: float) -> int:
        argv = self.image.resolve([self.translate_argument(expand(part, self.env)) for part in command])
        try:
            return subprocess.run(argv, env=self.process_env(), cwd=str(self.pod.workdir), timeout=timeout,
                                  capture_output=True, check=False).returncode
        except subprocess.TimeoutExpired:
            return -1

    # --- probes ----------------------------------------------------------------------------------

    def probe_once(self, probe: dict[str, Any]) -> bool:
        _check(f"container {self.name}: probe", probe, PROBE_FIELDS)
        timeout = float(probe.get("timeoutSeconds", 1))
        if "httpGet" in probe:
            get = probe["httpGet"]
            unknown = set(get) - {"path", "port", "scheme", "httpHeaders", "host"}
            if unknown or get.get("scheme", "HTTP") != "HTTP":
                raise UnsupportedPodField(f"container {self.name}: httpGet {sorted(unknown) or get['scheme']}")
            port = self.pod.local_port(self, get["port"])
            request = urllib.request.Request(f"http://{get.get('host', POD_IP)}:{port}{get.get('path', '/')}")
            for header in get.get("httpHeaders", []):
                request.add_header(header["name"], header["value"])
            try:
                with urllib.request.urlopen(request, timeout=timeout) as answer:
                    return 200 <= answer.status < 400
            except (urllib.error.URLError, OSError, TimeoutError):
                return False
        if "tcpSocket" in probe:
            try:
                with socket.create_connection((POD_IP, self.pod.local_port(self, probe["tcpSocket"]["port"])), timeout):
                    return True
            except OSError:
                return False
        if "exec" in probe:
            return self.exec(probe["exec"]["command"], timeout) == 0
        raise UnsupportedPodField(f"container {self.name}: a probe with no handler")


class Pod:
    """One pod of a template: run() for a Job's pod, start()/wait_ready()/terminate() for a server."""

    def __init__(self, cluster: Cluster, template: dict[str, Any], name: str, workdir: Path,
                 extra_env: dict[str, str] | None = None):
        self.cluster, self.name, self.workdir = cluster, name, workdir
        self.metadata = template.get("metadata", {})
        self.spec = template["spec"]
        self.uid = f"uid-{name}"
        self.events: list[Event] = []
        self.t0 = time.monotonic()
        _check("pod spec", self.spec, POD_SPEC_FIELDS)
        if self.spec.get("hostNetwork"):
            raise UnsupportedPodField("hostNetwork")
        workdir.mkdir(parents=True, exist_ok=True)
        self.volumes = {volume["name"]: volume for volume in self.spec.get("volumes", [])}
        self.port_map: dict[int, int] = {}
        self.mounts_of: dict[str, list[tuple[str, Path]]] = {}
        self.read_only: list[tuple[str, Path, list[tuple[str, float, int]]]] = []
        self._stop_probes = threading.Event()
        self._probe_threads: list[threading.Thread] = []
        specs = [(c, True) for c in self.spec.get("initContainers", [])] + [(c, False) for c in self.spec["containers"]]
        for spec, _ in specs:
            self.mounts_of[spec["name"]] = self._mount(spec)
            for port in spec.get("ports", []):
                self.port_map.setdefault(int(port["containerPort"]), free_port())
        if extra_env:  # what LeaderWorkerSet injects into its pods, for example
            for spec, _ in specs:
                spec.setdefault("env", [])
                spec["env"] = [{"name": k, "value": v} for k, v in extra_env.items()] + spec["env"]
        self.init_containers = [Container(self, spec, True) for spec, init in specs if init]
        self.containers = [Container(self, spec, False) for spec, init in specs if not init]
        self.restart_policy = self.spec.get("restartPolicy", "Always")

    @functools.cached_property
    def rootfs(self) -> Path:
        """The containers' writable layer (HOME, TMPDIR), under a short path of its own; made
        when a container first starts."""
        return Path(tempfile.mkdtemp(prefix="pod-"))

    def event(self, what: str) -> None:
        self.events.append(Event(time.monotonic() - self.t0, what))

    # --- volumes ---------------------------------------------------------------------------------

    def _volume_dir(self, name: str) -> Path:
        if name not in self.volumes:
            raise PodFailed(f"volume {name} is mounted but not declared")
        volume = dict(self.volumes[name])
        volume.pop("name")
        (kind, source), = volume.items()
        if kind not in VOLUME_KINDS:
            raise UnsupportedPodField(f"volume {name}: {kind}")
        if kind == "persistentVolumeClaim":
            if source["claimName"] not in self.cluster.claims:
                raise PodFailed(f"volume {name}: claim {source['claimName']} does not exist (the pod stays Pending)")
            return self.cluster.claims[source["claimName"]]
        if kind == "emptyDir":
            unknown = set(source) - {"medium", "sizeLimit"}
            if unknown or source.get("medium", "") not in ("", "Memory"):
                raise UnsupportedPodField(f"volume {name}: emptyDir {sorted(unknown) or source['medium']}")
            base = Path("/dev/shm") if source.get("medium") == "Memory" else self.workdir
            directory = base / f"vllm-serving-pod-{self.uid}" / name
            directory.mkdir(parents=True, exist_ok=True)
            return directory
        return self._projected(name, kind, source)

    def _projected(self, name: str, kind: str, source: dict[str, Any]) -> Path:
        """A ConfigMap or Secret volume: each key (or each of `items`) a file with its mode."""
        ref = source["name"] if kind == "configMap" else source["secretName"]
        unknown = set(source) - {"name", "secretName", "items", "defaultMode", "optional"}
        if unknown:
            raise UnsupportedPodField(f"volume {name}: {kind} {sorted(unknown)}")
        store = self.cluster.config_maps if kind == "configMap" else self.cluster.secrets
        if ref not in store:
            if source.get("optional"):
                store = {ref: {}}
            else:
                raise PodFailed(f"volume {name}: {kind} {ref} does not exist (the pod stays ContainerCreating)")
        data = store[ref]
        directory = self.workdir / "volumes" / name
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        default_mode = int(source.get("defaultMode", 0o644))
        items = source.get("items") or [{"key": key, "path": key} for key in data]
        for item in items:
            if item["key"] not in data:
                raise PodFailed(f"volume {name}: {kind} {ref} has no key {item['key']}")
            path = directory / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[item["key"]])
            path.chmod(int(item.get("mode", default_mode)))
        return directory

    def _mount(self, container: dict[str, Any]) -> list[tuple[str, Path]]:
        mounts = []
        for mount in container.get("volumeMounts", []):
            _check(f"container {container['name']}: volumeMount {mount.get('name')}", mount, MOUNT_FIELDS)
            volume = self.volumes.get(mount["name"], {})
            if mount["mountPath"] == "/dev/shm":
                if volume.get("emptyDir", {}).get("medium") != "Memory":
                    raise UnsupportedPodField("/dev/shm mounted from anything but an emptyDir of medium Memory")
                # Shared memory is /dev/shm whatever a process is told: the machine's own tmpfs.
                mounts.append(("/dev/shm", Path("/dev/shm")))
                continue
            directory = self._volume_dir(mount["name"])
            if mount.get("subPath"):
                directory = directory / mount["subPath"]
                directory.mkdir(parents=True, exist_ok=True)
            read_only = mount.get("readOnly") or volume.get("persistentVolumeClaim", {}).get("readOnly")
            if read_only:
                self.read_only.append((mount["mountPath"], directory, self._snapshot(directory)))
            mounts.append((mount["mountPath"], directory))
        # Longest first: /model/x before /model.
        return sorted(mounts, key=lambda m: -len(m[0]))

    @staticmethod
    def _snapshot(directory: Path) -> list[tuple[str, float, int]]:
        found = []
        for path in sorted(directory.rglob("*")):
            try:
                status = path.lstat()
            except FileNotFoundError:
                continue
            found.append((str(path.relative_to(directory)), status.st_mtime, status.st_size))
        return found

    def check_read_only(self) -> None:
        """A write under a readOnly mount fails the pod: in a cluster it would have been EROFS."""
        for mount_path, directory, before in self.read_only:
            after = self._snapshot(directory)
            if after != before:
                changed = sorted({e[0] for e in before} ^ {e[0] for e in after}) or ["(contents)"]
                raise PodFailed(f"something wrote under the read-only mount {mount_path}: {changed[:5]}")

    def local_port(self, container: Container, port: int | str) -> int:
        number = container.ports.get(port) if isinstance(port, str) and not port.isdigit() else int(port)
        if number is None:
            raise PodFailed(f"container {container.name}: probe port {port!r} is not a named port of the container")
        return self.port_map.get(number, number)

    def url(self, port: int | str = "http") -> str:
        return f"http://{POD_IP}:{self.local_port(self.containers[0], port)}"

    # --- lifecycle -------------------------------------------------------------------------------

    def run_init_containers(self, timeout: float) -> None:
        for container in self.init_containers:
            container.start()
            assert container.process is not None
            try:
                code = container.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                container.kill()
                raise PodFailed(f"init container {container.name} still running after {timeout} s:\n{container.log()[-2000:]}") from None
            self.event(f"{container.name}: exited {code}")
            if code != 0:
                raise PodFailed(f"init container {container.name} exited {code}:\n{container.log()[-2000:]}")

    def run(self, timeout: float) -> int:
        """A Job's pod: init containers, then the containers to completion; the exit code."""
        self.run_init_containers(timeout)
        for container in self.containers:
            container.start()
        codes = []
        for container in self.containers:
            assert container.process is not None
            try:
                codes.append(container.process.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                self.kill()
                raise PodFailed(f"{container.name} still running after {timeout} s:\n{container.log()[-2000:]}") from None
        self.check_read_only()
        if "rootfs" in self.__dict__:  # the finished containers' writable layer
            shutil.rmtree(self.rootfs, ignore_errors=True)
        return max(codes, key=abs)

    def start(self, init_timeout: float = 600) -> Pod:
        """A server's pod: init containers, then the containers, with their probes running."""
        self.run_init_containers(init_timeout)
        for container in self.containers:
            container.start()
            thread = threading.Thread(target=self._probe_loop, args=(container,), daemon=True)
            thread.start()
            self._probe_threads.append(thread)
        return self

    @property
    def ready(self) -> bool:
        return all(c.ready for c in self.containers)

    def wait_ready(self, timeout: float) -> float:
        """Seconds from the pod's creation until every container is ready (readiness as probed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready:
                return time.monotonic() - self.t0
            for container in self.containers:
                if container.process and container.process.poll() is not None and self.restart_policy == "Never":
                    raise PodFailed(f"{container.name} exited {container.process.returncode}:\n{container.log()[-3000:]}")
            time.sleep(0.5)
        raise PodFailed(f"not ready after {timeout} s; events {self.events}:\n{self.containers[0].log()[-3000:]}")

    def _probe_loop(self, container: Container) -> None:  # noqa: PLR0912 - kuberuntime's states, in one place
        """kuberuntime: startup first (neither of the others runs before it passes), then readiness
        and liveness; a failed startup or liveness probe, or an exited process, ends in a restart
        as restartPolicy says."""
        spec = container.spec
        while not self._stop_probes.is_set():
            startup = spec.get("startupProbe")
            if startup and not self._run_probe(container, "startupProbe", startup, until_success=True):
                if self._stop_probes.is_set() or not self._restart(container, "startup probe failed"):
                    return
                continue
            container.started = True
            self.event(f"{container.name}: started (startup probe passed)" if startup else f"{container.name}: running")
            readiness = None
            if spec.get("readinessProbe"):
                readiness = threading.Thread(target=self._run_probe, args=(container, "readinessProbe", spec["readinessProbe"]),
                                             daemon=True)
                readiness.start()
            else:
                container.ready = True
            if spec.get("livenessProbe"):
                self._run_probe(container, "livenessProbe", spec["livenessProbe"])
            assert container.process is not None
            while not self._stop_probes.is_set() and container.process.poll() is None and not spec.get("livenessProbe"):
                self._stop_probes.wait(0.2)
            if self._stop_probes.is_set():
                return
            exited = container.process.poll()
            if exited is None:
                why = "liveness probe failed"
            elif self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and exited != 0):
                why = f"exited {exited}"
            else:
                container.ready = False
                self.event(f"{container.name}: exited {exited}")
                return
            if readiness:
                container.ready = False
            if not self._restart(container, why):
                return

    def _restart(self, container: Container, why: str) -> bool:
        self.event(f"{container.name}: {why}, killed")
        container.ready = False
        self._kill_container(container, float(self.spec.get("terminationGracePeriodSeconds", 30)))
        if self.restart_policy == "Never" or self._stop_probes.is_set():
            return False
        container.restarts += 1
        container.start()
        return True

    def _run_probe(self, container: Container, kind: str, probe: dict[str, Any], until_success: bool = False) -> bool:
        """kuberuntime's prober worker: the first probe after initialDelaySeconds, then every periodSeconds;
        a result flips after successThreshold (readiness) or failureThreshold consecutive results."""
        period = float(probe.get("periodSeconds", 10))
        failure_threshold = int(probe.get("failureThreshold", 3))
        success_threshold = int(probe.get("successThreshold", 1))
        if self._stop_probes.wait(float(probe.get("initialDelaySeconds", 0))):
            return False
        successes = failures = 0
        while not self._stop_probes.is_set():
            if container.process is None or container.process.poll() is not None:
                if kind == "readinessProbe":
                    container.ready = False
                return False
            ok = container.probe_once(probe)
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            if kind == "readinessProbe":
                if ok and successes >= success_threshold and not container.ready:
                    container.ready = True
                    self.event(f"{container.name}: ready")
                elif not ok and failures >= failure_threshold and container.ready:
                    container.ready = False
                    self.event(f"{container.name}: not ready")
            elif ok and until_success:
                return True
            elif not ok and failures >= failure_threshold:
                self.event(f"{container.name}: {kind} failed {failures} times")
                return False
            self._stop_probes.wait(period)
        return False

    def _kill_container(self, container: Container, grace: float) -> float:
        """preStop, SIGTERM, SIGKILL at the end of the grace period; seconds until the process exited."""
        start = time.monotonic()
        if container.process is None or container.process.poll() is not None:
            return 0.0
        pre_stop = container.spec.get("lifecycle", {}).get("preStop")
        if pre_stop:
            self.event(f"{container.name}: preStop {pre_stop['exec']['command']}")
            code = container.exec(pre_stop["exec"]["command"], timeout=grace)
            self.event(f"{container.name}: preStop exited {code}")
        container.kill(signal.SIGTERM)
        self.event(f"{container.name}: SIGTERM")
        remaining = max(grace - (time.monotonic() - start), 0.0)
        assert container.process is not None
        try:
            container.process.wait(timeout=remaining)
            self.event(f"{container.name}: exited {container.process.returncode}")
            # The container ends with its main process: what it left behind goes with the cgroup.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(container.process.pid, signal.SIGKILL)
        except subprocess.TimeoutExpired:
            container.kill(signal.SIGKILL)
            container.process.wait()
            self.event(f"{container.name}: SIGKILL at the end of the grace period")
        return time.monotonic() - start

    def terminate(self, on_sigterm: Callable[[], None] | None = None) -> float:
        """What the kubelet does when the pod is deleted; seconds until every container exited.
        The probes keep running through preStop (a terminating pod is still probed for readiness)."""
        grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
        took = 0.0
        for container in self.containers:
            took = max(took, self._kill_container(container, grace))
        self._stop_probes.set()
        for container in self.containers:
            container.ready = False
        if on_sigterm:
            on_sigterm()
        self.check_read_only()
        return took

    def kill(self) -> None:
        """Tear-down for a test's cleanup: every process, now."""
        self._stop_probes.set()
        for container in [*self.init_containers, *self.containers]:
            container.kill()
            if container.process:
                container.process.wait()
        shutil.rmtree(Path("/dev/shm") / f"vllm-serving-pod-{self.uid}", ignore_errors=True)
