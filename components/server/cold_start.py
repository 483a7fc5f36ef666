"""The predicted cold start: how long from `pulumi up` on an empty node to a server that answers.

From the declared sizes and rates, in seconds (GB = 10^9 bytes):

    download  D = model.size / download.assumedBandwidthGBps      (0 without model.source)
    pull      P = server.imageSizeGB / download.assumedBandwidthGBps
    load      L = model.size / server.assumedLoadRateGBps + STARTUP_OVERHEAD_SECONDS

    the download Job runs the server image (Hugging Face, by default): P + D + L
        (the node pulls the image for the Job first; the server then finds it there)
    otherwise, server.prePullImage: max(D, P) + L
        (the DaemonSet pulls while the Job downloads)
    otherwise: D + P + L
        (the server pod, and so its pull, starts only once the download is complete)

The download images of git and S3 are small next to the vLLM image and left out. It is a
prediction from what the stack declares, not a measurement: set the rates to what your
cluster's link, registry and storage deliver.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ServingConfig, quantity_bytes
from ..config.rules import STARTUP_OVERHEAD_SECONDS

GB = 1e9


@dataclass(frozen=True)
class ColdStart:
    download_seconds: float
    pull_seconds: float
    load_seconds: float
    # How the pull fits with the download: "first" (the Job pulls the image), "overlapped", "after".
    pull_order: str

    @property
    def seconds(self) -> float:
        if self.pull_order == "overlapped":
            return max(self.download_seconds, self.pull_seconds) + self.load_seconds
        return self.download_seconds + self.pull_seconds + self.load_seconds


def _job_runs_server_image(config: ServingConfig) -> bool:
    """Whether the download Job's image is the server's: as ModelDownloadArgs.image chooses it."""
    source = config.model.download_source
    if source is None:
        return False
    return (config.download.image or source.default_image(config.image.reference)) == config.image.reference


def predict_cold_start(config: ServingConfig) -> ColdStart | None:
    """None when model.size is not set: without the bytes there is nothing to predict from."""
    if not config.model.size:
        return None
    weights = quantity_bytes(config.model.size) / GB
    bandwidth = config.download.assumedBandwidthGBps
    download = weights / bandwidth if config.model.source else 0.0
    load = weights / config.server.assumedLoadRateGBps + STARTUP_OVERHEAD_SECONDS
    if config.model.source and _job_runs_server_image(config):
        order = "first"
    else:
        order = "overlapped" if config.server.prePullImage else "after"
    return ColdStart(download, config.server.imageSizeGB / bandwidth, load, order)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def cold_start_line(config: ServingConfig) -> str:
    """What `render` prints on stderr for a stack."""
    predicted = predict_cold_start(config)
    if predicted is None:
        return "predicted cold start: unknown (set model.size to predict it)"
    pull = {"first": "pulled first, by the download Job", "overlapped": "overlapped with the download",
            "after": "after the download; server.prePullImage overlaps them"}[predicted.pull_order]
    return (
        f"predicted cold start: {_minutes(predicted.seconds)} = download {_minutes(predicted.download_seconds)}, "
        f"image pull {_minutes(predicted.pull_seconds)} ({pull}), load {_minutes(predicted.load_seconds)} "
        f"(model.size {config.model.size}, download.assumedBandwidthGBps {config.download.assumedBandwidthGBps}, "
        f"server.imageSizeGB {config.server.imageSizeGB}, server.assumedLoadRateGBps "
        f"{config.server.assumedLoadRateGBps}; the formula: README, Cold start)"
    )
