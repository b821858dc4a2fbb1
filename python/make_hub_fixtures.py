#!/usr/bin/env python3
"""The models the end-to-end tests load from a local server that mimics the Hugging Face hub
(e2e/server.mjs serves e2e/hub/<org>/<repo>/ at /hub/<org>/<repo>/resolve/main/<file>).

    python3 python/make_hub_fixtures.py

Writes (deterministic, offline, about 1 MB in all):

* ``e2e/hub/glassbox-test/tiny-gpt2-gguf/model-q8_0.gguf``: a random GPT-2 (2 layers,
  d_model 64, vocabulary 1000) written as llama.cpp's converter writes GPT-2 at Q8_0 (by
  ``make_family_fixtures.gguf_tensors``), carrying the byte-level BPE vocabulary of
  ``fixtures/tokenizers/gpt2-bpe`` (tokens, token types, merges, BOS/EOS) as its tokenizer.
* ``e2e/hub/glassbox-test/tiny-llama/``: a random Llama (2 layers, d_model 64, 4 heads sharing
  2 key/value heads) as ``save_pretrained`` writes it (config.json, model.safetensors) with the
  sentencepiece ``tokenizer.json`` of ``fixtures/tokenizers/llama-spm``.

The weights are random: the tests check that loading works and predictions appear, not what
they say.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_family_fixtures as fam  # noqa: E402  (sets the offline environment, imports torch, gguf)

import gguf  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf.quants import quantize  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "e2e" / "hub" / "glassbox-test"
TOK = ROOT / "fixtures" / "tokenizers"


def field(reader: gguf.GGUFReader, key: str):
    f = reader.fields[key]
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [int(f.parts[i][0]) for i in f.data]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return int(f.parts[f.data[0]][0])


def gpt2_gguf() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=1000, n_positions=128, n_embd=64, n_layer=2, n_head=4, n_inner=256)
    model = GPT2LMHeadModel(cfg).eval()
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("lm_head")}
    hf = json.loads(cfg.to_json_string())
    hf["n_inner"] = 256
    tensors = fam.gguf_tensors("gpt2", sd, hf)
    vocab = gguf.GGUFReader(str(TOK / "gpt2-bpe.gguf"))
    out = HUB / "tiny-gpt2-gguf"
    out.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out / "model-q8_0.gguf"), "gpt2")
    w.add_name("glassbox-test tiny-gpt2")
    for key, val, vt in fam.gguf_hparams("gpt2", hf):
        w.add_key_value(key, val, vt)
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q8_0))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(field(vocab, "tokenizer.ggml.pre"))
    w.add_token_list(field(vocab, "tokenizer.ggml.tokens"))
    w.add_token_types(field(vocab, "tokenizer.ggml.token_type"))
    w.add_token_merges(field(vocab, "tokenizer.ggml.merges"))
    w.add_bos_token_id(field(vocab, "tokenizer.ggml.bos_token_id"))
    w.add_eos_token_id(field(vocab, "tokenizer.ggml.eos_token_id"))
    for name, arr in tensors:
        if arr.ndim == 1:
            w.add_tensor(name, arr.astype(np.float32))
        else:
            w.add_tensor(name, quantize(arr, QT.Q8_0), raw_dtype=QT.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_safetensors() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg).eval()
    out = HUB / "tiny-llama"
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    (out / "generation_config.json").unlink(missing_ok=True)
    shutil.copy(TOK / "llama-spm" / "tokenizer.json", out / "tokenizer.json")


def main() -> int:
    torch.set_grad_enabled(False)
    gpt2_gguf()
    llama_safetensors()
    for p in sorted(HUB.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
