"""A model's architecture facts, read from its Hugging Face `config.json`.

Only families whose layers this module counts exactly are read: dense GQA decoders (Llama,
Mistral, Qwen2, Qwen3), mixture-of-experts decoders (Mixtral, Qwen2-MoE, Qwen3-MoE) and
DeepSeek's multi-head latent attention with MoE (DeepSeek-V2/V3, Kimi K2). Any other
`model_type` (sliding-window hybrids such as Gemma 2/3 or gpt-oss, Mamba hybrids, encoder-
decoders, multimodal wrappers) gives an `UnknownArchitecture`, never a guess: the check that
uses it is then skipped and says why.

Parameters are counted per decoder layer as (sharded, replicated) under tensor parallelism,
following vLLM's layers: q/k/v/o, MLP and expert weights are split across the TP ranks; the MoE
router gate and DeepSeek's q_a/kv_a down-projections are `ReplicatedLinear` (whole on every
rank). Norm weights are counted as replicated; biases with their projection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .weights import WeightBytes

DENSE_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})
MOE_TYPES = frozenset({"mixtral", "qwen2_moe", "qwen3_moe"})
MLA_TYPES = frozenset({"deepseek_v2", "deepseek_v3", "kimi_k2"})
SUPPORTED_MODEL_TYPES = DENSE_TYPES | MOE_TYPES | MLA_TYPES

# Bytes per parameter of a `torch_dtype` (or vLLM `--dtype`) name.
DTYPE_BYTES = {
    "float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2,
}
# Bytes per parameter of the linear layers of a pre-quantized checkpoint, by
# `quantization_config.quant_method` (bits come from the config where the method has them).
FP8_METHODS = frozenset({"fp8", "fbgemm_fp8"})
BIT_METHODS = frozenset({"awq", "gptq"})


@dataclass(frozen=True)
class LayerParams:
    """Parameters of one decoder layer: split across TP ranks, and whole on every rank."""

    sharded: int
    replicated: int


@dataclass(frozen=True)
class UnknownArchitecture:
    """An architecture the fit check cannot size offline; `reason` says why."""

    reason: str


@dataclass(frozen=True)
class Architecture:
    """What the fit check needs to know about a model."""

    model_type: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int | None
    # The longest context the model allows, as vLLM derives it (rope scaling applied).
    max_context: int | None
    dtype: str  # the checkpoint's torch_dtype
    layers: tuple[LayerParams, ...]
    # Parameters in the checkpoint that vLLM does not load by default (DeepSeek's MTP module).
    unloaded_params: int = 0
    # Multi-head latent attention (DeepSeek): the cache holds kv_lora_rank + qk_rope_head_dim.
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    num_experts: int = 0
    sliding_window: int | None = None
    # A pre-quantized checkpoint's method and bytes per linear-layer parameter (None: 16/32-bit).
    checkpoint_quantization: str | None = None
    checkpoint_linear_bytes: float | None = None
    weight_bytes: WeightBytes | None = None

    @property
    def mla_latent_width(self) -> int | None:
        """Values a token's MLA cache holds per layer (kv_lora_rank + qk_rope_head_dim); None without MLA."""
        if self.kv_lora_rank is None or self.qk_rope_head_dim is None:
            return None
        return self.kv_lora_rank + self.qk_rope_head_dim

    @property
    def uses_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def loaded_params(self) -> int:
        """Parameters vLLM loads: embeddings, lm_head (unless tied), every layer, final norm."""
        lm_head = 0 if self.tie_word_embeddings else self.embedding_params
        layers = sum(layer.sharded + layer.replicated for layer in self.layers)
        return self.embedding_params + lm_head + layers + self.hidden_size

    @property
    def checkpoint_params(self) -> int:
        return self.loaded_params + self.unloaded_params


def _get(config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = config.get(key)
    return default if value is None else value


def _attention_params(c: Mapping[str, Any], heads: int, kv_heads: int, head_dim: int) -> LayerParams:
    hidden = c["hidden_size"]
    q, kv = heads * head_dim, kv_heads * head_dim
    sharded = hidden * q + 2 * hidden * kv + q * hidden
    if c["model_type"] in ("qwen2", "qwen2_moe") or _get(c, "attention_bias", False):
        sharded += q + 2 * kv
    replicated = 2 * hidden + (2 * head_dim if c["model_type"].startswith("qwen3") else 0)
    return LayerParams(sharded, replicated)


def _mla_params(c: Mapping[str, Any]) -> LayerParams:
    hidden, heads = c["hidden_size"], c["num_attention_heads"]
    nope, rope, v_dim = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    kv_rank, q_rank = c["kv_lora_rank"], c.get("q_lora_rank")
    replicated = hidden * (kv_rank + rope) + kv_rank + 2 * hidden  # kv_a_proj, its norm, layer norms
    sharded = kv_rank * heads * (nope + v_dim) + heads * v_dim * hidden  # kv_b_proj, o_proj
    if q_rank:
        replicated += hidden * q_rank + q_rank  # q_a_proj and its norm
        sharded += q_rank * heads * (nope + rope)
    else:
        sharded += hidden * heads * (nope + rope)
    return LayerParams(sharded, replicated)


def _mlp_params(c: Mapping[str, Any], index: int) -> tuple[LayerParams, int]:
    """(MLP parameters of layer `index`, number of routed experts in it)."""
    hidden, model_type = c["hidden_size"], c["model_type"]
    gated = 3 * hidden  # gate, up and down projections per unit of intermediate size
    if model_type == "mixtral":
        experts = c["num_local_experts"]
        return LayerParams(experts * gated * c["intermediate_size"], hidden * experts), experts
    if model_type in ("qwen2_moe", "qwen3_moe"):
        step = _get(c, "decoder_sparse_step", 1)
        if index not in _get(c, "mlp_only_layers", []) and (index + 1) % step == 0:
            experts = c["num_experts"]
            shared = gated * _get(c, "shared_expert_intermediate_size", 0)
            router = hidden * experts + (hidden if shared else 0)
            return LayerParams(experts * gated * c["moe_intermediate_size"] + shared, router), experts
    if (model_type in MLA_TYPES and c.get("n_routed_experts")
            and index >= _get(c, "first_k_dense_replace", 0) and index % _get(c, "moe_layer_freq", 1) == 0):
            experts = c["n_routed_experts"]
            units = experts + _get(c, "n_shared_experts", 0)
            return LayerParams(units * gated * c["moe_intermediate_size"], hidden * experts), experts
    return LayerParams(gated * c["intermediate_size"], 0), 0


def _checkpoint_quantization(c: Mapping[str, Any]) -> tuple[str | None, float | None, str | None]:
    """(method, bytes per linear parameter, reason it cannot be sized) of a pre-quantized checkpoint."""
    quant = c.get("quantization_config")
    if not quant:
        return None, None, None
    method = str(quant.get("quant_method", "unknown"))
    if method in FP8_METHODS:
        return method, 1.0, None
    if method in BIT_METHODS and quant.get("bits"):
        return method, quant["bits"] / 8, None
    return method, None, f"its quantization_config (quant_method {method!r}) is not modelled offline"


def _max_context(c: Mapping[str, Any]) -> int | None:
    """vLLM's derived maximum length: max_position_embeddings times a rope scaling factor.

    As vLLM's `_get_and_verify_max_len`: no factor for `su`, `longrope` and `llama3` rope
    scaling (already in max_position_embeddings); `yarn` scales its
    original_max_position_embeddings.
    """
    max_positions = c.get("max_position_embeddings")
    scaling = c.get("rope_scaling") or {}
    rope_type = scaling.get("rope_type", scaling.get("type"))
    factor = scaling.get("factor")
    if max_positions is None or not factor or rope_type in ("su", "longrope", "llama3"):
        return max_positions
    if rope_type == "yarn" and scaling.get("original_max_position_embeddings"):
        return int(scaling["original_max_position_embeddings"] * factor)
    return int(max_positions * factor)


def _required(c: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    missing = [key for key in keys if c.get(key) is None]
    return f"config.json lacks {', '.join(missing)}" if missing else None


def read_architecture(
    config: Mapping[str, Any], weight_bytes: WeightBytes | None = None
) -> Architecture | UnknownArchitecture:
    """The architecture of a Hugging Face `config.json` dict, or why it cannot be sized offline."""
    model_type = str(config.get("model_type", ""))
    if model_type not in SUPPORTED_MODEL_TYPES:
        known = ", ".join(sorted(SUPPORTED_MODEL_TYPES))
        return UnknownArchitecture(f"model_type {model_type or '(none)'!r} is not one the fit check models ({known})")
    base = ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")
    extra = ("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim") if model_type in MLA_TYPES else ()
    missing = _required(config, base + extra)
    if missing:
        return UnknownArchitecture(missing)
    dtype = str(_get(config, "torch_dtype", _get(config, "dtype", "bfloat16")))
    if dtype not in DTYPE_BYTES:
        return UnknownArchitecture(f"torch_dtype {dtype!r} is not one the fit check models ({', '.join(DTYPE_BYTES)})")
    method, linear_bytes, unsized = _checkpoint_quantization(config)
    if unsized and weight_bytes is None:
        return UnknownArchitecture(f"{unsized}; give the weight bytes (the safetensors index or model.size)")
    return _build(config, weight_bytes, method, linear_bytes)


def _build(
    c: Mapping[str, Any], weight_bytes: WeightBytes | None, method: str | None, linear_bytes: float | None
) -> Architecture:
    heads = c["num_attention_heads"]
    kv_heads = _get(c, "num_key_value_heads", heads)
    head_dim = _get(c, "head_dim", c["hidden_size"] // heads)
    layers, experts = [], 0
    for index in range(c["num_hidden_layers"]):
        attention = _mla_params(c) if c["model_type"] in MLA_TYPES else _attention_params(c, heads, kv_heads, head_dim)
        mlp, layer_experts = _mlp_params(c, index)
        experts = max(experts, layer_experts)
        layers.append(LayerParams(attention.sharded + mlp.sharded, attention.replicated + mlp.replicated))
    # DeepSeek's multi-token-prediction module: one more MoE layer plus eh_proj (2h x h) and norms.
    mtp_layers = _get(c, "num_nextn_predict_layers", 0) if c["model_type"] in MLA_TYPES else 0
    mtp = mtp_layers * (layers[-1].sharded + layers[-1].replicated + 2 * c["hidden_size"] ** 2 + 3 * c["hidden_size"])
    use_sliding = _get(c, "use_sliding_window", True)
    return Architecture(
        model_type=c["model_type"],
        num_layers=c["num_hidden_layers"],
        hidden_size=c["hidden_size"],
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=c["vocab_size"],
        tie_word_embeddings=bool(_get(c, "tie_word_embeddings", False)),
        max_position_embeddings=c.get("max_position_embeddings"),
        max_context=_max_context(c),
        dtype=str(_get(c, "torch_dtype", _get(c, "dtype", "bfloat16"))),
        layers=tuple(layers),
        unloaded_params=mtp,
        kv_lora_rank=c.get("kv_lora_rank") if c["model_type"] in MLA_TYPES else None,
        qk_rope_head_dim=c.get("qk_rope_head_dim") if c["model_type"] in MLA_TYPES else None,
        num_experts=experts,
        sliding_window=c.get("sliding_window") if use_sliding else None,
        checkpoint_quantization=method,
        checkpoint_linear_bytes=linear_bytes,
        weight_bytes=weight_bytes,
    )
