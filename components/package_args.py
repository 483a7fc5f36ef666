"""The VllmServing component's args, for Pulumi's schema inference (components/package.py).

Generated from the config models by `python -m vllm_serving.package_args`: do not edit. Each
property is a stack config key, with the same name, meaning and default (README, Configuration).
"""

# No `from __future__ import annotations`: Pulumi's analyzer reads the annotations as objects,
# so each class is defined after the classes it uses.
from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

import pulumi


class ImageConfigArgs(TypedDict):
    """ImageConfig"""

    registry: NotRequired[pulumi.Input[str]]
    """Image registry."""
    repository: NotRequired[pulumi.Input[str]]
    """Image repository."""
    tag: NotRequired[pulumi.Input[str]]
    """Image tag; pin a release, never `latest`."""
    pullPolicy: NotRequired[pulumi.Input[str]]
    """Kubernetes image pull policy."""


class ResourceLimitsArgs(TypedDict):
    """ResourceLimits"""

    cpu: NotRequired[pulumi.Input[str]]
    """CPU limit (and request) of the server container."""
    memory: NotRequired[pulumi.Input[str]]
    """Memory limit (and request) of the server container; at least 1Gi (vLLM's processes)."""
    gpu: NotRequired[pulumi.Input[int]]
    """GPUs per replica; also vLLM's tensor parallel size."""


class ResourcesConfigArgs(TypedDict):
    """ResourcesConfig"""

    limits: NotRequired[pulumi.Input[ResourceLimitsArgs]]
    """Resource limits of the server container; the requests are the same."""


class VolumeConfigArgs(TypedDict):
    """VolumeConfig"""

    storageClass: NotRequired[pulumi.Input[str]]
    """Storage class of a new model volume; empty for the cluster default."""
    size: NotRequired[pulumi.Input[str]]
    """Size of a new model volume."""
    accessModes: NotRequired[pulumi.Input[Sequence[str]]]
    """Access modes of the model volume (new or existing)."""
    existingClaim: NotRequired[pulumi.Input[str]]
    """An existing PersistentVolumeClaim holding (or to hold) the model."""
    subPath: NotRequired[pulumi.Input[str]]
    """Directory of the volume that holds the model files."""
    retainOnDelete: NotRequired[pulumi.Input[bool]]
    """Keep a new volume, and the weights on it, in the cluster when Pulumi deletes it (`pulumi destroy`, a replacement): Pulumi's `retainOnDelete`. Set false, and `pulumi up`, before a `pulumi destroy` that should delete the weights too."""
    protect: NotRequired[pulumi.Input[bool]]
    """Also mark a new volume with Pulumi's `protect`: then `pulumi destroy` stops with an error before deleting anything, and so does any change that would replace the claim."""
    keepPreviousVersions: NotRequired[pulumi.Input[int]]
    """Model versions kept on the volume besides the current one, for a rollback without a download; 0 deletes the previous one once the new one is complete."""


class HuggingFaceSourceArgs(TypedDict):
    """HuggingFaceSource"""

    id: NotRequired[pulumi.Input[str]]
    """Hugging Face model id, e.g. codellama/CodeLlama-7b-Instruct-hf."""
    files: NotRequired[pulumi.Input[str]]
    """Comma-separated files or globs to download; empty for what vLLM loads."""
    existingSecret: NotRequired[pulumi.Input[str]]
    """Secret whose key `token` holds a Hugging Face token."""
    revision: NotRequired[pulumi.Input[str]]
    """Branch, tag or commit of the repository; empty for `main`."""


class GitSourceArgs(TypedDict):
    """GitSource"""

    url: NotRequired[pulumi.Input[str]]
    """HTTP(S) URL of the git repository holding the model (Git LFS supported)."""
    ref: NotRequired[pulumi.Input[str]]
    """Branch, tag or commit; empty for the repository's default branch."""
    existingSecret: NotRequired[pulumi.Input[str]]
    """Secret whose key `token` holds a git token."""
    files: NotRequired[pulumi.Input[str]]
    """Comma-separated files or globs whose LFS objects to fetch; empty for what vLLM loads."""


class S3SourceArgs(TypedDict):
    """S3Source"""

    url: NotRequired[pulumi.Input[str]]
    """s3://bucket/prefix of the model files."""
    existingSecret: NotRequired[pulumi.Input[str]]
    """Secret (T9k s3-env layout) with keys accessKeyID, secretAccessKey, endpoint, region."""
    files: NotRequired[pulumi.Input[str]]
    """Comma-separated keys or globs under the prefix to copy; empty for what vLLM loads."""


class ModelConfigArgs(TypedDict):
    """ModelConfig"""

    deployName: pulumi.Input[str]
    """Name the model is served under; also names every resource. A DNS-1035 label of at most 40 characters, not ending in -epp or -group (the names a stack gives its endpoint picker and its multi-node group: two stacks of one namespace never share a name)."""
    volume: NotRequired[pulumi.Input[VolumeConfigArgs]]
    """The volume that holds the weights."""
    source: NotRequired[pulumi.Input[str]]
    """Where the model comes from."""
    size: NotRequired[pulumi.Input[str]]
    """Approximate size of the weights, e.g. 15Gi; checked against the volume and the startup budget."""
    huggingface: NotRequired[pulumi.Input[HuggingFaceSourceArgs]]
    """The Hugging Face source."""
    git: NotRequired[pulumi.Input[GitSourceArgs]]
    """The git source (Git LFS supported)."""
    s3: NotRequired[pulumi.Input[S3SourceArgs]]
    """The S3 source."""
    architecture: NotRequired[pulumi.Input[Mapping[str, Any]]]
    """The model's config.json fields (model_type, num_hidden_layers, hidden_size, heads, torch_dtype...), for the fit check offline; unset to skip it (or read it from the Hub, fitCheck.readHub)."""


class KeySelectorArgs(TypedDict):
    """secretKeyRef and configMapKeyRef of an env entry."""

    name: pulumi.Input[str]
    """The Secret's or ConfigMap's name."""
    key: pulumi.Input[str]
    """The key of its data."""
    optional: NotRequired[pulumi.Input[bool]]
    """Start the pod even when the Secret or key is missing."""


class FieldSelectorArgs(TypedDict):
    """FieldSelector"""

    fieldPath: pulumi.Input[str]
    """The pod field, e.g. metadata.name or status.podIP."""
    apiVersion: NotRequired[pulumi.Input[str]]
    """Its API version; v1 by default, and the only one."""


class ResourceFieldSelectorArgs(TypedDict):
    """ResourceFieldSelector"""

    resource: pulumi.Input[str]
    """The container resource, e.g. limits.memory."""
    containerName: NotRequired[pulumi.Input[str]]
    """The container; this one by default."""
    divisor: NotRequired[pulumi.Input[str]]
    """The unit the value is given in, e.g. 1Mi."""


class EnvVarSourceArgs(TypedDict):
    """Kubernetes' EnvVarSource, typed: each name and key is checked before it reaches the API."""

    secretKeyRef: NotRequired[pulumi.Input[KeySelectorArgs]]
    """A key of a Secret."""
    configMapKeyRef: NotRequired[pulumi.Input[KeySelectorArgs]]
    """A key of a ConfigMap."""
    fieldRef: NotRequired[pulumi.Input[FieldSelectorArgs]]
    """A field of the pod."""
    resourceFieldRef: NotRequired[pulumi.Input[ResourceFieldSelectorArgs]]
    """A resource of the container."""


class EnvVarArgs(TypedDict):
    """EnvVar"""

    name: pulumi.Input[str]
    """Name of the environment variable."""
    value: NotRequired[pulumi.Input[str]]
    """Its value; set this or valueFrom."""
    valueFrom: NotRequired[pulumi.Input[EnvVarSourceArgs]]
    """Kubernetes valueFrom (secretKeyRef, configMapKeyRef, ...); set this or value."""


class ServiceConfigArgs(TypedDict):
    """ServiceConfig"""

    type: NotRequired[pulumi.Input[str]]
    """Service type."""
    annotations: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Annotations on the Service."""


class TolerationArgs(TypedDict):
    """Toleration"""

    key: NotRequired[pulumi.Input[str]]
    """Taint key to tolerate; empty with Exists for every taint."""
    operator: NotRequired[pulumi.Input[str]]
    """Exists, or Equal to value."""
    value: NotRequired[pulumi.Input[str]]
    """Taint value, with operator Equal."""
    effect: NotRequired[pulumi.Input[str]]
    """Taint effect to tolerate; empty for every effect."""
    tolerationSeconds: NotRequired[pulumi.Input[int]]
    """With NoExecute: how long the pod stays once tainted."""


class NetworkConfigArgs(TypedDict):
    """The network the collective (NCCL, Gloo) traffic of a multi-node group uses; server.nodes > 1 only."""

    socketInterface: NotRequired[pulumi.Input[str]]
    """Network interface NCCL and Gloo bind to (NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME), e.g. eth0; empty to let them choose."""
    rdmaResource: NotRequired[pulumi.Input[str]]
    """Extended resource of an RDMA device each pod requests, e.g. rdma/ib or nvidia.com/hostdev; empty for TCP only. Adds the IPC_LOCK capability NCCL needs to pin memory."""
    rdmaCount: NotRequired[pulumi.Input[int]]
    """How many of rdmaResource each pod requests."""
    hostNetwork: NotRequired[pulumi.Input[bool]]
    """Run the group's pods in the node's network namespace (for RDMA setups that need it)."""


class CompileCacheConfigArgs(TypedDict):
    """vLLM's compile cache (VLLM_CACHE_ROOT: torch.compile artifacts) kept across restarts."""

    enabled: NotRequired[pulumi.Input[bool]]
    """Keep vLLM's compile cache on a volume, so a restart does not recompile."""
    existingClaim: NotRequired[pulumi.Input[str]]
    """A claim of its own for the cache (mounted read-write); empty: the directory compile-cache/ of the model volume."""
    accessModes: NotRequired[pulumi.Input[Sequence[str]]]
    """Access modes of existingClaim, as its claim lists them: every server pod writes the cache, so several pods (server.nodes > 1, more than one replica, rollout surge) need ReadWriteMany."""
    gpuType: NotRequired[pulumi.Input[str]]
    """The GPU model the cache is compiled for, part of its key; empty: the server's nodeSelector nvidia.com/gpu.product."""


class ServerConfigArgs(TypedDict):
    """ServerConfig"""

    extraArgs: NotRequired[pulumi.Input[Sequence[str]]]
    """More `vllm serve` arguments, e.g. --max-model-len=8192."""
    engineVersion: NotRequired[pulumi.Input[str]]
    """The vLLM release the image runs (e.g. 0.33.0), for a custom image.tag that does not name one; it picks the engine profile (flags, defaults, routes) instead of the tag. Empty: read from image.tag."""
    startupTimeoutSeconds: NotRequired[pulumi.Input[int]]
    """How long the server may take to load the model before it is restarted."""
    assumedLoadRateGBps: NotRequired[pulumi.Input[float]]
    """Weight loading rate (GB/s) assumed when checking startupTimeoutSeconds against model.size."""
    drainSeconds: NotRequired[pulumi.Input[int]]
    """How long a terminating server pod keeps serving before vLLM is told to stop, so that endpoints, kube-proxy and ingress controllers stop sending it new requests first."""
    shutdownTimeoutSeconds: NotRequired[pulumi.Input[int]]
    """--shutdown-timeout: how long vLLM lets in-flight requests finish after SIGTERM; 0 aborts them."""
    rollout: NotRequired[pulumi.Input[str]]
    """How a pod template change rolls out: recreate (every pod stops first), oneAtATime (maxSurge 0, maxUnavailable 1), surge (maxSurge 1, maxUnavailable 0: needs a spare GPU); auto: recreate for one replica, oneAtATime for several."""
    shmSizeLimit: NotRequired[pulumi.Input[str]]
    """Size limit of the memory-backed /dev/shm; empty for no limit beyond the pod's memory."""
    nodeSelector: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Node labels the server pods require."""
    tolerations: NotRequired[pulumi.Input[Sequence[TolerationArgs]]]
    """Tolerations of the server pods; by default the nvidia.com/gpu taint."""
    podAnnotations: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Annotations on the server pods."""
    affinity: NotRequired[pulumi.Input[Mapping[str, Any]]]
    """Kubernetes affinity of the server pods."""
    runtimeClassName: NotRequired[pulumi.Input[str]]
    """RuntimeClass of the server pods, e.g. nvidia."""
    priorityClassName: NotRequired[pulumi.Input[str]]
    """PriorityClass of the server pods."""
    serviceAccountName: NotRequired[pulumi.Input[str]]
    """ServiceAccount of the server pods."""
    podSecurityContext: NotRequired[pulumi.Input[Mapping[str, Any]]]
    """Pod securityContext of the server."""
    securityContext: NotRequired[pulumi.Input[Mapping[str, Any]]]
    """Container securityContext of the server."""
    usageStats: NotRequired[pulumi.Input[bool]]
    """Let vLLM send its usage statistics upstream; off sets VLLM_NO_USAGE_STATS and DO_NOT_TRACK."""
    nodes: NotRequired[pulumi.Input[int]]
    """Nodes (pods) per replica. 1: a Deployment. More: a LeaderWorkerSet of groups of this many pods, each with the GPUs of resources.limits."""
    network: NotRequired[pulumi.Input[NetworkConfigArgs]]
    """The network of a multi-node group's collective traffic."""
    gpuType: NotRequired[pulumi.Input[str]]
    """GPU model of the nodes, for the fit check's memory figure (e.g. H100-80GB)."""
    gpuMemory: NotRequired[pulumi.Input[str]]
    """Memory of one GPU as a quantity (e.g. 80Gi), for the fit check; wins over gpuType."""
    prePullImage: NotRequired[pulumi.Input[bool]]
    """Pull the server image onto every node the server may run on (a DaemonSet), while the model downloads rather than after."""
    imageSizeGB: NotRequired[pulumi.Input[float]]
    """Size (GB) of the server image a node pulls, for the predicted cold start."""
    compileCache: NotRequired[pulumi.Input[CompileCacheConfigArgs]]
    """vLLM's compile cache, kept on a volume across restarts."""


class DownloadConfigArgs(TypedDict):
    """DownloadConfig"""

    image: NotRequired[pulumi.Input[str]]
    """Image of the download Job; empty for the source's default."""
    parallelism: NotRequired[pulumi.Input[int]]
    """Parallel file transfers of the download."""
    backoffLimit: NotRequired[pulumi.Input[int]]
    """Retries of a failed download pod."""
    ttlSecondsAfterFinished: NotRequired[pulumi.Input[int]]
    """Delete the finished Job after this many seconds; unset to keep it."""
    timeoutMinutes: NotRequired[pulumi.Input[int]]
    """How long `pulumi up` waits for the download Job to complete."""
    runAsUser: NotRequired[pulumi.Input[int]]
    """User (and group, fsGroup) of the download pod; 0 only for volumes whose directories belong to root and cannot be made group-writable."""
    assumedBandwidthGBps: NotRequired[pulumi.Input[float]]
    """Bandwidth (GB/s) assumed for the download and the image pull, for the predicted cold start."""
    cpu: NotRequired[pulumi.Input[str]]
    """CPU request of the download container."""
    memory: NotRequired[pulumi.Input[str]]
    """Memory request and limit of the download container; at least 64Mi (rclone's, git's or python3's)."""
    nodeSelector: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Node labels the download pods require; unset for server.nodeSelector."""
    tolerations: NotRequired[pulumi.Input[Sequence[TolerationArgs]]]
    """Tolerations of the download pods; unset for server.tolerations."""
    affinity: NotRequired[pulumi.Input[Mapping[str, Any]]]
    """Kubernetes affinity of the download pods; unset for server.affinity."""


class EngineConfigArgs(TypedDict):
    """vLLM engine arguments as typed fields; each unset one is left to vLLM's own default."""

    maxModelLen: NotRequired[pulumi.Input[int]]
    """--max-model-len: context length."""
    gpuMemoryUtilization: NotRequired[pulumi.Input[float]]
    """--gpu-memory-utilization: share of GPU memory vLLM may use, 0 < x ≤ 1."""
    dtype: NotRequired[pulumi.Input[str]]
    """--dtype of weights and activations."""
    quantization: NotRequired[pulumi.Input[str]]
    """--quantization method, e.g. awq, gptq, fp8."""
    kvCacheDtype: NotRequired[pulumi.Input[str]]
    """--kv-cache-dtype."""
    enablePrefixCaching: NotRequired[pulumi.Input[bool]]
    """--enable-prefix-caching / --no-enable-prefix-caching."""
    enableChunkedPrefill: NotRequired[pulumi.Input[bool]]
    """--enable-chunked-prefill / --no-enable-chunked-prefill."""
    maxNumSeqs: NotRequired[pulumi.Input[int]]
    """--max-num-seqs: concurrent sequences per step."""
    trustRemoteCode: NotRequired[pulumi.Input[bool]]
    """--trust-remote-code: run the model repository's own code."""
    tensorParallelSize: NotRequired[pulumi.Input[int]]
    """--tensor-parallel-size; default: the GPUs per pod / pipelineParallelSize."""
    pipelineParallelSize: NotRequired[pulumi.Input[int]]
    """--pipeline-parallel-size; default: server.nodes (pipeline parallel across nodes)."""


class LoraAdapterArgs(TypedDict):
    """A LoRA adapter, downloaded like the model and served under its own name."""

    name: pulumi.Input[str]
    """Name the adapter is served under in /v1/models."""
    source: pulumi.Input[str]
    """Where the adapter comes from."""
    huggingface: NotRequired[pulumi.Input[HuggingFaceSourceArgs]]
    """The adapter's Hugging Face source."""
    git: NotRequired[pulumi.Input[GitSourceArgs]]
    """The adapter's git source."""
    s3: NotRequired[pulumi.Input[S3SourceArgs]]
    """The adapter's S3 source."""


class LoraConfigArgs(TypedDict):
    """LoraConfig"""

    adapters: NotRequired[pulumi.Input[Sequence[LoraAdapterArgs]]]
    """LoRA adapters served beside the model (at most 100; more are loaded at runtime: routing.runtimeLora)."""
    maxLoraRank: NotRequired[pulumi.Input[int]]
    """--max-lora-rank: the largest adapter rank, one of the choices of the stack's vLLM release (1, 8, 16, 32, 64, 128, 256, 320, 512 in 0.32 to 0.34; checked against its engine profile)."""
    maxLoras: NotRequired[pulumi.Input[int]]
    """--max-loras: adapters in one batch."""


class ApiKeySecretRefArgs(TypedDict):
    """ApiKeySecretRef"""

    name: NotRequired[pulumi.Input[str]]
    """An existing Secret holding the API key."""
    key: NotRequired[pulumi.Input[str]]
    """The key of that Secret."""


class IngressConfigArgs(TypedDict):
    """IngressConfig"""

    enabled: NotRequired[pulumi.Input[bool]]
    """Create an Ingress for the Service."""
    className: NotRequired[pulumi.Input[str]]
    """IngressClass; empty for the cluster default."""
    host: NotRequired[pulumi.Input[str]]
    """Host name; required when enabled."""
    path: NotRequired[pulumi.Input[str]]
    """Path prefix under which the server's API is routed."""
    extraPaths: NotRequired[pulumi.Input[Sequence[str]]]
    """Paths routed besides the OpenAI API (/v1), e.g. /tokenize; the server answers them, with the API key."""
    maxRequestBodySize: NotRequired[pulumi.Input[str]]
    """Largest request body the proxy accepts (ingress-nginx proxy-body-size), e.g. 10m; 0 for no limit."""
    tlsSecret: NotRequired[pulumi.Input[str]]
    """Secret with the TLS certificate for host; empty for plain HTTP."""
    annotations: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Extra Ingress annotations."""


class ParentRefArgs(TypedDict):
    """ParentRef"""

    name: pulumi.Input[str]
    """Name of the Gateway."""
    namespace: NotRequired[pulumi.Input[str]]
    """Namespace of the Gateway; empty for the route's own."""
    sectionName: NotRequired[pulumi.Input[str]]
    """Listener of the Gateway; empty for all."""


class HttpRouteConfigArgs(TypedDict):
    """HttpRouteConfig"""

    enabled: NotRequired[pulumi.Input[bool]]
    """Create a Gateway API HTTPRoute for the Service."""
    parentRefs: NotRequired[pulumi.Input[Sequence[ParentRefArgs]]]
    """Gateways the route attaches to."""
    hostnames: NotRequired[pulumi.Input[Sequence[str]]]
    """Host names the route answers."""
    extraPaths: NotRequired[pulumi.Input[Sequence[str]]]
    """Paths routed besides the OpenAI API (/v1), e.g. /tokenize; the server answers them, with the API key."""
    requestTimeout: NotRequired[pulumi.Input[str]]
    """Gateway API request timeout; streamed completions run long."""


class AutoscalingConfigArgs(TypedDict):
    """AutoscalingConfig"""

    enabled: NotRequired[pulumi.Input[bool]]
    """Scale replicas with KEDA on vLLM's own load metrics."""
    minReplicas: NotRequired[pulumi.Input[int]]
    """Fewest replicas; 0 lets KEDA scale to zero when idle."""
    maxReplicas: NotRequired[pulumi.Input[int]]
    """Most replicas."""
    prometheusAddress: NotRequired[pulumi.Input[str]]
    """URL of the Prometheus that scrapes the server; required when enabled."""
    targetWaitingRequests: NotRequired[pulumi.Input[int]]
    """Queued requests per replica that trigger a scale-up."""
    targetRunningRequests: NotRequired[pulumi.Input[int]]
    """Running requests per replica that trigger a scale-up; 0: off."""
    cooldownSeconds: NotRequired[pulumi.Input[int]]
    """Quiet time before scaling down (a model load is expensive)."""


class PickerConfigArgs(TypedDict):
    """PickerConfig"""

    image: NotRequired[pulumi.Input[str]]
    """The endpoint picker's image: llm-d's router, pinned."""
    replicas: NotRequired[pulumi.Input[int]]
    """Endpoint picker pods; more than 1 run with leader election (one active, the others on standby)."""
    cpu: NotRequired[pulumi.Input[str]]
    """CPU the picker requests."""
    memory: NotRequired[pulumi.Input[str]]
    """Memory the picker requests, and its limit."""


class ScorerWeightsArgs(TypedDict):
    """Weights of the picker's scorers in its one scheduling profile; 0 leaves a scorer out."""

    prefixCache: NotRequired[pulumi.Input[int]]
    """prefix-cache-scorer: prefer the replica that holds the prompt's prefix."""
    kvCacheUtilization: NotRequired[pulumi.Input[int]]
    """kv-cache-utilization-scorer: prefer free KV cache."""
    queueDepth: NotRequired[pulumi.Input[int]]
    """queue-scorer: prefer the replica with the fewest waiting requests."""
    loraAffinity: NotRequired[pulumi.Input[int]]
    """lora-affinity-scorer: prefer a replica that has the adapter loaded (only with LoRA adapters)."""


class FlowControlConfigArgs(TypedDict):
    """FlowControlConfig"""

    enabled: NotRequired[pulumi.Input[bool]]
    """Hold requests in the picker's queue while the pool is saturated or has no ready replica (required for autoscaling.minReplicas 0)."""
    queueTimeoutSeconds: NotRequired[pulumi.Input[int]]
    """How long a request may wait in the queue; unset: twice the predicted start of a replica (needs model.size)."""
    maxRequests: NotRequired[pulumi.Input[int]]
    """Most requests the queue holds; unset: no limit."""


class RuntimeLoraConfigArgs(TypedDict):
    """RuntimeLoraConfig"""

    enabled: NotRequired[pulumi.Input[bool]]
    """Load LoRA adapters without a restart: a request names an adapter in the volume's lora-runtime/ directory (beside model.volume.subPath) and vLLM's filesystem resolver loads it. The load/unload API is never routed."""
    adapterNames: NotRequired[pulumi.Input[Sequence[str]]]
    """Adapters that may be loaded at runtime, so that routing.routeByModel sends their requests here."""


class RoutingConfigArgs(TypedDict):
    """RoutingConfig"""

    enabled: NotRequired[pulumi.Input[bool]]
    """Route through an InferencePool and llm-d's endpoint picker (prefix-cache, KV-cache and queue aware) on the Gateways of httpRoute.parentRefs."""
    failureMode: NotRequired[pulumi.Input[str]]
    """What the Gateway does when the picker does not answer: FailOpen sends the request to a replica of its own choosing, FailClose refuses it."""
    routeByModel: NotRequired[pulumi.Input[bool]]
    """Match requests by the `model` field of their body (the Body-Based Router sets it as a header), so that several stacks share one Gateway."""
    picker: NotRequired[pulumi.Input[PickerConfigArgs]]
    """The endpoint picker's pods."""
    scorers: NotRequired[pulumi.Input[ScorerWeightsArgs]]
    """The picker's scorer weights."""
    flowControl: NotRequired[pulumi.Input[FlowControlConfigArgs]]
    """The picker's request queue."""
    runtimeLora: NotRequired[pulumi.Input[RuntimeLoraConfigArgs]]
    """LoRA adapters loaded at runtime."""


class MonitorConfigArgs(TypedDict):
    """MonitorConfig"""

    enabled: NotRequired[pulumi.Input[bool]]
    """Create the Prometheus Operator resource."""
    interval: NotRequired[pulumi.Input[str]]
    """Scrape interval."""
    labels: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Labels the Prometheus selects monitors by."""


class MetricsConfigArgs(TypedDict):
    """MetricsConfig"""

    serviceMonitor: NotRequired[pulumi.Input[MonitorConfigArgs]]
    """A Prometheus Operator ServiceMonitor."""
    podMonitor: NotRequired[pulumi.Input[MonitorConfigArgs]]
    """A Prometheus Operator PodMonitor."""
    scrapeAnnotations: NotRequired[pulumi.Input[bool]]
    """Add prometheus.io/scrape, port and path to the server pods."""


class PodDisruptionBudgetConfigArgs(TypedDict):
    """PodDisruptionBudgetConfig"""

    enabled: NotRequired[pulumi.Input[bool]]
    """Create a PodDisruptionBudget when more than one replica can run."""
    maxUnavailable: NotRequired[pulumi.Input[int]]
    """Replicas a voluntary disruption (drain) may take at once."""


class NetworkPolicyConfigArgs(TypedDict):
    """NetworkPolicyConfig"""

    enabled: NotRequired[pulumi.Input[bool]]
    """Admit traffic to port 8000 only from the listed namespaces."""
    allowedNamespaces: NotRequired[pulumi.Input[Sequence[str]]]
    """Namespaces (by name) of in-cluster clients that may call the server; its own is always allowed."""
    ingressNamespaces: NotRequired[pulumi.Input[Sequence[str]]]
    """Namespaces of the ingress controller or Gateway that forwards the Ingress's or HTTPRoute's requests (e.g. ingress-nginx); needs ingress or httpRoute enabled."""
    monitoringNamespaces: NotRequired[pulumi.Input[Sequence[str]]]
    """Namespaces of what scrapes /metrics (e.g. monitoring for Prometheus); the server answers them /metrics, and every other path only with the API key."""


class FitCheckConfigArgs(TypedDict):
    """FitCheckConfig"""

    readHub: NotRequired[pulumi.Input[bool]]
    """Without model.architecture, read config.json and the safetensors index of model.huggingface.id from the Hub (a read with a 10 s timeout) for the fit check; off so that nothing reaches the network unless asked."""


class VllmServingArgs(TypedDict):
    """All of a stack's `vllm-serving:` config, validated."""

    namespace: NotRequired[pulumi.Input[str]]
    """Namespace of every resource (must exist)."""
    replicaCount: NotRequired[pulumi.Input[int]]
    """Number of server replicas."""
    image: NotRequired[pulumi.Input[ImageConfigArgs]]
    """The server image (the chart's image.*)."""
    resources: NotRequired[pulumi.Input[ResourcesConfigArgs]]
    """The server's resources (the chart's resources.*)."""
    model: pulumi.Input[ModelConfigArgs]
    """The served model: its name, volume and source."""
    env: NotRequired[pulumi.Input[Sequence[EnvVarArgs]]]
    """Environment of the server and download pods."""
    service: NotRequired[pulumi.Input[ServiceConfigArgs]]
    """The Service in front of the server."""
    server: NotRequired[pulumi.Input[ServerConfigArgs]]
    """Settings of the server pods."""
    download: NotRequired[pulumi.Input[DownloadConfigArgs]]
    """Settings of the download Job."""
    engine: NotRequired[pulumi.Input[EngineConfigArgs]]
    """vLLM engine arguments as typed keys."""
    lora: NotRequired[pulumi.Input[LoraConfigArgs]]
    """LoRA adapters served beside the model."""
    apiKey: NotRequired[pulumi.Input[Any]]
    """API key the server requires on /v1; set with `pulumi config set --secret apiKey`."""
    apiKeySecret: NotRequired[pulumi.Input[ApiKeySecretRefArgs]]
    """An existing Secret holding the API key, instead of apiKey."""
    allowUnauthenticated: NotRequired[pulumi.Input[bool]]
    """Expose the server outside the cluster (ingress, httpRoute, a LoadBalancer or NodePort Service) without an API key, on purpose."""
    imagePullSecrets: NotRequired[pulumi.Input[Sequence[str]]]
    """Secrets to pull images with (every pod)."""
    checkSecrets: NotRequired[pulumi.Input[bool]]
    """Read the referenced Secrets at preview and refuse missing keys (needs the cluster)."""
    ingress: NotRequired[pulumi.Input[IngressConfigArgs]]
    """An Ingress for the Service."""
    httpRoute: NotRequired[pulumi.Input[HttpRouteConfigArgs]]
    """A Gateway API HTTPRoute for the Service."""
    autoscaling: NotRequired[pulumi.Input[AutoscalingConfigArgs]]
    """Autoscaling with KEDA on vLLM's metrics."""
    routing: NotRequired[pulumi.Input[RoutingConfigArgs]]
    """An InferencePool with llm-d's endpoint picker (docs/routing.md)."""
    metrics: NotRequired[pulumi.Input[MetricsConfigArgs]]
    """Prometheus Operator monitors and scrape annotations."""
    podDisruptionBudget: NotRequired[pulumi.Input[PodDisruptionBudgetConfigArgs]]
    """A PodDisruptionBudget for drains."""
    networkPolicy: NotRequired[pulumi.Input[NetworkPolicyConfigArgs]]
    """A NetworkPolicy admitting only listed namespaces."""
    fitCheck: NotRequired[pulumi.Input[FitCheckConfigArgs]]
    """Where the fit check reads the model's architecture."""
