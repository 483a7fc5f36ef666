"""Make a tiny random-weight Llama that vLLM's CPU build serves: for the real-server checks of the
allow-list (tests/surface/test_real_server.py) and its benchmark. No hub access: the weights are
random and the tokenizer is a byte-level BPE trained here on a few lines.

Run with the vLLM environment's Python: `python tests/surface/tiny_model.py DIR`.
"""

from __future__ import annotations

import sys
from pathlib import Path


def make_tiny_model(directory: Path) -> Path:
    if (directory / "config.json").exists() and (directory / "tokenizer.json").exists():
        return directory
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<s>", "</s>", "<unk>"])
    text = ["The quick brown fox jumps over the lazy dog. " * 4, "Hello world, this is a tiny model.", "0123456789 abcdefghijklmnopqrstuvwxyz"]
    tokenizer.train_from_iterator(text * 50, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    # A chat template, so /v1/chat/completions answers too.
    fast.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
    fast.save_pretrained(directory)
    torch.manual_seed(0)
    # head_dim 64: vLLM's CPU attention refuses 16 ("Unsupported CPU attention configuration").
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, head_dim=64, max_position_embeddings=512, bos_token_id=0, eos_token_id=1,
        torch_dtype="float32",
    )
    LlamaForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    return directory


if __name__ == "__main__":
    print(make_tiny_model(Path(sys.argv[1])))
