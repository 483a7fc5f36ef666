"""Where a model (or a LoRA adapter) comes from, parsed once into a typed source.

Like KubeAI's model_source.go, each source kind is one object that carries everything that
differs between kinds: the spec that identifies the downloaded bytes (and so its
fingerprint), the Secret and the keys it reads, the environment it adds to the download pod,
the keys it requires and its default download image. Nothing else branches on `source`:
the download component, the secret check and the cross-field rules ask the object.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from ..names import reserved_suffix_problem
from .chart import VolumeConfig
from .fields import (
    StrictModel,
    bounded_text,
    dns1035_label,
    dns1123_subdomain,
    git_ref,
    hf_repo_id,
    http_url,
    quantity,
    s3_url,
)

DEFAULT_GIT_IMAGE = "docker.io/alpine/git:v2.49.1"
DEFAULT_S3_IMAGE = "docker.io/rclone/rclone:1.74.2"

# Names derived from deployName carry suffixes ("-download-<hash>", "-scripts-<hash>");
# a Job's name also becomes a pod label value, which Kubernetes caps at 63.
MAX_DEPLOY_NAME = 40

SourceName = Literal["huggingface", "git", "s3"]


@dataclass(frozen=True)
class PodEnv:
    """One variable the download pod reads: a plain value, or a key of the source's Secret."""

    name: str
    value: str = ""
    secret_key: str = ""
    optional: bool = False


class ModelSource(StrictModel):
    """What every source kind answers; the subclasses below are the kinds."""

    kind: ClassVar[str]
    if TYPE_CHECKING:  # declared by each kind, in its own place among that kind's keys
        existingSecret: str

    # Every kind has these two keys (declared in its own place): one check for all of them.
    @field_validator("files", check_fields=False)
    @classmethod
    def _files(cls, value: str) -> str:
        return bounded_text(value, "files")

    @field_validator("existingSecret", check_fields=False)
    @classmethod
    def _secret(cls, value: str) -> str:
        return dns1123_subdomain(value, "Secret name")

    def spec(self) -> dict[str, str]:
        """What identifies the downloaded bytes; a change to any of it means a new download."""
        raise NotImplementedError

    def pod_env(self, parallelism: int) -> list[PodEnv]:
        """What download.sh reads for this source; tokens only ever by reference to the Secret."""
        raise NotImplementedError

    def required(self) -> list[tuple[str, str]]:
        """(key under the source, its value) of each key this kind cannot do without."""
        raise NotImplementedError

    def default_image(self, server_image: str) -> str:
        raise NotImplementedError

    @property
    def secret_name(self) -> str:
        return self.existingSecret

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The keys the Secret must hold: what the pod reads from it without `optional`."""
        if not self.secret_name:
            return ()
        return tuple(env.secret_key for env in self.pod_env(1) if env.secret_key and not env.optional)


class HuggingFaceSource(ModelSource):
    kind: ClassVar[str] = "huggingface"
    id: str = Field("", description="Hugging Face model id, e.g. codellama/CodeLlama-7b-Instruct-hf.")
    files: str = Field("", description="Comma-separated files or globs to download; empty for what vLLM loads.")
    existingSecret: str = Field("", description="Secret whose key `token` holds a Hugging Face token.")
    revision: str = Field("", description="Branch, tag or commit of the repository; empty for `main`.")

    @field_validator("id")
    @classmethod
    def _repo_id(cls, value: str) -> str:
        return value and hf_repo_id(value)

    @field_validator("revision")
    @classmethod
    def _revision(cls, value: str) -> str:
        return value and git_ref(value, "revision")

    def spec(self) -> dict[str, str]:
        return {"id": self.id, "revision": self.revision, "files": self.files}

    def pod_env(self, parallelism: int) -> list[PodEnv]:
        env = [
            PodEnv("HF_MODEL_ID", self.id),
            PodEnv("HF_REVISION", self.revision),
            PodEnv("HF_FILES", self.files),
            PodEnv("HF_MAX_WORKERS", str(parallelism)),
            # The Job runs as a non-root user in an image whose HOME is root's.
            PodEnv("HF_HOME", "/tmp/hf-home"),
        ]
        return env + ([PodEnv("HF_TOKEN", secret_key="token")] if self.existingSecret else [])

    def required(self) -> list[tuple[str, str]]:
        return [("id", self.id)]

    def default_image(self, server_image: str) -> str:
        # The server image already carries huggingface_hub; the node has it cached only when the Job runs
        # where the server runs (a single-node volume while the server runs: storage/placement.py).
        return server_image


class GitSource(ModelSource):
    kind: ClassVar[str] = "git"
    url: str = Field("", description="HTTP(S) URL of the git repository holding the model (Git LFS supported).")
    ref: str = Field("", description="Branch, tag or commit; empty for the repository's default branch.")
    existingSecret: str = Field("", description="Secret whose key `token` holds a git token.")
    files: str = Field(
        "", description="Comma-separated files or globs whose LFS objects to fetch; empty for what vLLM loads."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return value and http_url(value, "git URL")

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        return value and git_ref(value, "git ref")

    def spec(self) -> dict[str, str]:
        # `files` joins the spec only when set, so that a stack without it keeps its fingerprint
        # (and its downloaded directory) across the upgrade that added the key.
        return {"url": self.url, "ref": self.ref, **({"files": self.files} if self.files else {})}

    def pod_env(self, parallelism: int) -> list[PodEnv]:
        env = [PodEnv("GIT_URL", self.url), PodEnv("GIT_REF", self.ref), PodEnv("GIT_LFS_CONCURRENCY", str(parallelism))]
        env += [PodEnv("GIT_FILES", self.files)] if self.files else []
        return env + ([PodEnv("GIT_TOKEN", secret_key="token")] if self.existingSecret else [])

    def required(self) -> list[tuple[str, str]]:
        return [("url", self.url)]

    def default_image(self, server_image: str) -> str:  # noqa: ARG002 - every kind's signature
        return DEFAULT_GIT_IMAGE



class S3Source(ModelSource):
    kind: ClassVar[str] = "s3"
    url: str = Field("", description="s3://bucket/prefix of the model files.")
    existingSecret: str = Field(
        "", description="Secret (T9k s3-env layout) with keys accessKeyID, secretAccessKey, endpoint, region."
    )

    files: str = Field("", description="Comma-separated keys or globs under the prefix to copy; empty for what vLLM loads.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return value and s3_url(value)

    def spec(self) -> dict[str, str]:
        # As for git: `files` is in the spec only when set, so existing fingerprints stay.
        return {"url": self.url, **({"files": self.files} if self.files else {})}

    def pod_env(self, parallelism: int) -> list[PodEnv]:
        return [
            PodEnv("S3_URL", self.url),
            PodEnv("S3_CONCURRENCY", str(parallelism)),
            *([PodEnv("S3_FILES", self.files)] if self.files else []),
            # The keys of the T9k chart's s3-env Secret, so migrated Secrets work unchanged.
            PodEnv("AWS_ACCESS_KEY_ID", secret_key="accessKeyID"),
            PodEnv("AWS_SECRET_ACCESS_KEY", secret_key="secretAccessKey"),
            PodEnv("S3_ENDPOINT_URL", secret_key="endpoint", optional=True),
            PodEnv("AWS_REGION", secret_key="region", optional=True),
        ]

    def required(self) -> list[tuple[str, str]]:
        return [("url", self.url), ("existingSecret", self.existingSecret)]

    def default_image(self, server_image: str) -> str:  # noqa: ARG002 - every kind's signature
        return DEFAULT_S3_IMAGE



class Sourced:
    """A model or an adapter: one `source` naming which of its source keys is used.

    A mixin, not a model: the keys stay declared where each model lists them.
    """

    if TYPE_CHECKING:
        source: str
        huggingface: HuggingFaceSource
        git: GitSource
        s3: S3Source

    @property
    def download_source(self) -> ModelSource | None:
        """The source the files are downloaded from; None when nothing is downloaded."""
        chosen = getattr(self, self.source) if self.source else None
        return chosen if isinstance(chosen, ModelSource) else None

    @property
    def source_spec(self) -> dict[str, str]:
        chosen = self.download_source
        return {"source": self.source, **(chosen.spec() if chosen else {})}

    @property
    def source_fingerprint(self) -> str:
        canonical = json.dumps(self.source_spec, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def secret_name(self) -> str:
        chosen = self.download_source
        return chosen.secret_name if chosen else ""


class ModelConfig(StrictModel, Sourced):
    deployName: str = Field(
        description="Name the model is served under; also names every resource. A DNS-1035 label of at most 40 "
        "characters, not ending in -epp or -group (the names a stack gives its endpoint picker and its "
        "multi-node group: two stacks of one namespace never share a name).",
    )
    volume: VolumeConfig = Field(default_factory=VolumeConfig, description="The volume that holds the weights.")
    source: Literal["huggingface", "git", "s3", ""] = Field("", description="Where the model comes from.")
    size: str = Field(
        "", description="Approximate size of the weights, e.g. 15Gi; checked against the volume and the startup budget."
    )
    huggingface: HuggingFaceSource = Field(default_factory=HuggingFaceSource, description="The Hugging Face source.")
    git: GitSource = Field(default_factory=GitSource, description="The git source (Git LFS supported).")
    s3: S3Source = Field(default_factory=S3Source, description="The S3 source.")
    architecture: dict[str, Any] | None = Field(
        None,
        description="The model's config.json fields (model_type, num_hidden_layers, hidden_size, heads, "
        "torch_dtype...), for the fit check offline; unset to skip it (or read it from the Hub, fitCheck.readHub).",
    )

    @field_validator("deployName")
    @classmethod
    def _deploy_name(cls, value: str) -> str:
        dns1035_label(value, "model.deployName", MAX_DEPLOY_NAME)
        if problem := reserved_suffix_problem(value):  # names two stacks of a namespace could share
            raise ValueError(problem)
        return value

    @field_validator("size", mode="before")
    @classmethod
    def _size_quantity(cls, value: Any) -> str:
        return value and quantity(value, "the model size")

    @property
    def model_dir(self) -> str:
        """The model's directory in the volume: with a download, one per source fingerprint, so a
        changed source downloads beside the old model and the server moves over once it is complete."""
        if not self.source:
            return self.volume.subPath
        return "/".join(part for part in (self.volume.subPath, self.source_fingerprint) if part)
