#!/usr/bin/env python3
"""Write a tiny random-weight Llama model that real vLLM can serve.

No model hub is reachable from our machines, so tests and the local demo serve
a model made here: a byte-level BPE tokenizer trained on a few sentences and a
two-layer Llama with random weights (about 0.5 MB). It needs numpy, safetensors
and tokenizers only, not torch.

head_dim is 64 (hidden 128 / 2 heads): vLLM's CPU attention rejects 16.

  make_tiny_model.py OUT_DIR [--seed N] [--broken]

--seed gives a different model (same shapes) so an upgrade from one model to
another can be tested; --broken writes a model whose weights do not match its
config, which vLLM refuses to load (for rollback tests).
"""

import argparse
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file
from tokenizers import ByteLevelBPETokenizer

HIDDEN = 128
INTERMEDIATE = 256
LAYERS = 2
HEADS = 2
VOCAB = 512
MAX_POSITIONS = 512
SPECIAL_TOKENS = ["<s>", "</s>", "<unk>", "<pad>"]

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "vLLM serves large language models with paged attention.",
    "Prometheus scrapes metrics and Grafana draws the dashboards.",
    "A rolling upgrade drains one host at a time behind the gateway.",
    "Hello world, this is a tiny model for tests and demos.",
    "Tokens per second, time to first token and queue depth matter.",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


def write_tokenizer(out_dir):
    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(CORPUS * 20, vocab_size=VOCAB, min_frequency=1,
                                  special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
            "model_max_length": MAX_POSITIONS,
            "chat_template": CHAT_TEMPLATE,
        }, f, indent=2)
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}, f, indent=2)


def llama_weights(rng, broken):
    def w(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    tensors = {
        "model.embed_tokens.weight": w(VOCAB, HIDDEN),
        "model.norm.weight": np.ones(HIDDEN, dtype=np.float32),
        "lm_head.weight": w(VOCAB, HIDDEN),
    }
    for i in range(LAYERS):
        p = "model.layers.%d." % i
        tensors.update({
            p + "self_attn.q_proj.weight": w(HIDDEN, HIDDEN),
            p + "self_attn.k_proj.weight": w(HIDDEN, HIDDEN),
            p + "self_attn.v_proj.weight": w(HIDDEN, HIDDEN),
            p + "self_attn.o_proj.weight": w(HIDDEN, HIDDEN),
            p + "mlp.gate_proj.weight": w(INTERMEDIATE, HIDDEN),
            p + "mlp.up_proj.weight": w(INTERMEDIATE, HIDDEN),
            p + "mlp.down_proj.weight": w(HIDDEN, INTERMEDIATE),
            p + "input_layernorm.weight": np.ones(HIDDEN, dtype=np.float32),
            p + "post_attention_layernorm.weight": np.ones(HIDDEN, dtype=np.float32),
        })
    if broken:
        # Shapes that contradict config.json: weight loading fails at start.
        tensors["model.embed_tokens.weight"] = w(VOCAB, HIDDEN // 2)
    return tensors


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--broken", action="store_true")
    args = parser.parse_args(argv)

    os.makedirs(args.out_dir, exist_ok=True)
    write_tokenizer(args.out_dir)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "max_position_embeddings": MAX_POSITIONS,
        "vocab_size": VOCAB,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "bos_token_id": 0,
        "eos_token_id": 1,
    }
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(args.out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 0, "eos_token_id": 1}, f, indent=2)
    rng = np.random.default_rng(args.seed)
    save_file(llama_weights(rng, args.broken), os.path.join(args.out_dir, "model.safetensors"),
              metadata={"format": "pt"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
