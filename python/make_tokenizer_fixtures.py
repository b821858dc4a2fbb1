#!/usr/bin/env python3
"""Writes the tokenizer fixtures for core/tests/tokenizers.rs into fixtures/tokenizers/.

Two small tokenizers, each trained here on public/corpus/moby-dick-heldout.txt (deterministic,
offline), each shipped twice: as a Hugging Face `tokenizer.json` and as a GGUF file carrying the
vocabulary the way llama.cpp's convert_hf_to_gguf.py writes it.

* `gpt2-bpe/tokenizer.json`: GPT-2-style byte-level BPE (ByteLevel pre-tokenizer with GPT-2's
  regex, ByteLevel decoder and post-processor), vocabulary 1000, plus the special token
  `<|endoftext|>`; trained with the `tokenizers` package.
  `gpt2-bpe.gguf`: `tokenizer.ggml.model` = "gpt2", `pre` = "gpt-2", tokens (in the byte-level
  spelling), token_type (NORMAL, CONTROL for the special token), merges, bos/eos ids
  (convert_hf_to_gguf's `_set_vocab_gpt2`).
* `llama-spm/tokenizer.model`: a sentencepiece BPE model with byte_fallback trained like
  Llama's (identity normalization, no collapsing of whitespace, a dummy prefix, split digits),
  vocabulary 1000. `llama-spm/tokenizer.json`: that model converted by transformers'
  `LlamaConverter` in its legacy form, which is what Llama-2's published tokenizer.json is
  (normalizer Prepend("▁") + Replace(" ", "▁"), BPE with byte_fallback, the Replace/ByteFallback/
  Fuse/Strip decoder), with the `<s> $A` post-processor `LlamaTokenizerFast` adds.
  `llama-spm.gguf`: `tokenizer.ggml.model` = "llama", tokens, scores and token_type from the
  sentencepiece model (convert_hf_to_gguf's `_create_vocab_sentencepiece`), bos/eos/unk ids,
  add_bos_token = true, add_space_prefix = true. No merges: a reader rebuilds them from the
  scores.
* `bert.gguf`: a GGUF whose `tokenizer.ggml.model` is "bert" (unsupported: the reader must say so).
* `expected.json`: the test texts, and for each tokenizer the ids `tokenizers.Tokenizer.from_file
  (tokenizer.json).encode(text).ids` gives, and the decoded string of a few single ids.

The script also checks that the llama tokenizer.json gives the same ids as sentencepiece itself
(with BOS) on every text, so the fixture is the real sentencepiece behaviour, and prints where
transformers' own GGUF tokenizer builder (which uses a Metaspace pre-tokenizer with
prepend_scheme "first") differs from it.

Usage: python python/make_tokenizer_fixtures.py   (tokenizers, sentencepiece, transformers, gguf)
"""

import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import gguf
import sentencepiece as spm
import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "tokenizers"
CORPUS = ROOT / "public" / "corpus" / "moby-dick-heldout.txt"
VOCAB = 1000

MULTILINGUAL = (
    "Call me Ishmael. Some years ago—never mind how long precisely—having little money.\n"
    "Français : « Où est l'hôtel ? » Ça coûte 12,50 € — déjà vu, naïve, cœur, Noël.\n"
    "Deutsch: Größe, Übermäßig, Straße, äöüß ÄÖÜ.\n"
    "Русский: Съешь же ещё этих мягких французских булок, да выпей чаю.\n"
    "Ελληνικά: Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.\n"
    "中文：我能吞下玻璃而不伤身体。日本語：私はガラスを食べられます。カタカナ、ひらがな。\n"
    "العربية: أنا قادر على أكل الزجاج و هذا لا يؤلمني.\n"
    "हिन्दी: मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती.\n"
    "Emoji: 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 ❤️ 😀😃.\n"
    "Numbers: 1234567 3.14159 -42 0x1F 1,000,000 2024-01-01.\n"
    "Spaces:a  b   c    d     e      f       g        h.\n"
    "Tabs:\tone\t\ttwo\t\t\tthree\n\nBlank lines above\n\n\n  indented line\r\nCRLF\n"
    "Contractions: don't, I'm, you're, we've, they'll, he'd, it's.\n"
    "Special: before<|endoftext|>after <|endoftext|> end"
)

TEXTS = [
    MULTILINGUAL,
    "",
    " ",
    "Hello world",
    "  leading spaces and trailing   ",
    "\n\nnewlines first",
    "whale",
    "<|endoftext|>",
    "literal <s> and </s> and <unk> tokens",
]


def train_gpt2(text: str, tmp: Path) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        min_frequency=2,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
    return tok


def train_sentencepiece(text: str, tmp: Path) -> Path:
    # One sentence a line: sentencepiece trains on lines.
    lines = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    (tmp / "lines.txt").write_text("\n".join(lines) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(tmp / "lines.txt"),
        model_prefix=str(tmp / "sp"),
        vocab_size=VOCAB,
        model_type="bpe",
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    # The model records the paths it was trained from: write the temporary ones out, so the
    # file is the same on every run.
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString((tmp / "sp.model").read_bytes())
    del proto.trainer_spec.input[:]
    proto.trainer_spec.input.append(CORPUS.name)
    proto.trainer_spec.model_prefix = "tokenizer"
    (tmp / "sp.model").write_bytes(proto.SerializeToString())
    return tmp / "sp.model"


def convert_llama(model_file: Path) -> Tokenizer:
    """transformers' LlamaConverter, legacy form, plus LlamaTokenizerFast's `<s> $A` template."""
    from transformers.convert_slow_tokenizer import LlamaConverter, SentencePieceExtractor
    from transformers.tokenization_utils_base import generate_merges

    class Extractor(SentencePieceExtractor):
        # transformers 5.23's SpmConverter calls `extract(vocab_scores)` but its extractor reads
        # that argument as a model type and fails; this is the extractor of transformers 4.x:
        # merges rebuilt from the vocabulary, ordered by the pieces' scores.
        def extract(self, vocab_scores=None):
            vocab = {piece.piece: i for i, piece in enumerate(self.proto.pieces)}
            scores = dict(vocab_scores) if vocab_scores is not None else None
            return vocab, generate_merges(vocab, scores)

    class Converter(LlamaConverter):
        SpmExtractor = Extractor

    class Original:  # what LlamaConverter reads off the slow tokenizer
        vocab_file = str(model_file)
        legacy = True
        add_prefix_space = True
        handle_byte_fallback = True

        def __init__(self):
            self.sp = spm.SentencePieceProcessor(model_file=str(model_file))

        def convert_ids_to_tokens(self, i):
            return self.sp.id_to_piece(i)

    tok = Converter(Original()).converted()
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)]
    )
    return tok


def write_gpt2_gguf(tok: Tokenizer, path: Path):
    """convert_hf_to_gguf `_set_vocab_gpt2`: tokens by id, NORMAL/CONTROL, merges, special ids."""
    j = json.loads(tok.to_str())
    vocab = tok.get_vocab(with_added_tokens=True)
    by_id = {i: t for t, i in vocab.items()}
    added = {a["id"]: a for a in j["added_tokens"]}
    tokens, types = [], []
    for i in range(len(by_id)):
        tokens.append(by_id[i])
        if i in added:
            types.append(gguf.TokenType.CONTROL if added[i]["special"] else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    merges = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    eot = vocab["<|endoftext|>"]
    w = gguf.GGUFWriter(str(path), "gpt2")
    w.add_name("glassbox tokenizer fixture gpt2-bpe")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    write(w)


def write_llama_gguf(model_file: Path, path: Path):
    """convert_hf_to_gguf `_create_vocab_sentencepiece`: pieces, scores and types by id."""
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        t = gguf.TokenType.NORMAL
        if sp.is_unknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.is_control(i):
            t = gguf.TokenType.CONTROL
        elif sp.is_unused(i):
            t = gguf.TokenType.UNUSED
        elif sp.is_byte(i):
            t = gguf.TokenType.BYTE
        types.append(t)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("glassbox tokenizer fixture llama-spm")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    write(w)


def write_bert_gguf(path: Path):
    w = gguf.GGUFWriter(str(path), "bert")
    w.add_tokenizer_model("bert")
    w.add_token_list(["[PAD]", "[UNK]", "hello", "##s"])
    w.add_token_types([gguf.TokenType.CONTROL, gguf.TokenType.UNKNOWN, 1, 1])
    write(w)


def write(w: "gguf.GGUFWriter"):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def transformers_gguf_ids(path: Path, texts):
    """What transformers' own GGUF tokenizer builder gives, for the report (not the fixture)."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer
    from transformers.integrations.gguf.reader import read_gguf_metadata

    metadata, _ = read_gguf_metadata(str(path), ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"))
    reader = gguf.GGUFReader(str(path))
    d = {}
    for key, name in [("tokens", "tokens"), ("scores", "scores"), ("token_type", "token_type"), ("merges", "merges")]:
        f = reader.fields.get(f"tokenizer.ggml.{key}")
        if f is not None:
            d[name] = f.contents()
    d["tokenizer_type"] = reader.fields["tokenizer.ggml.model"].contents()
    if "tokenizer.ggml.pre" in reader.fields:
        d["pre_tokenizer_type"] = reader.fields["tokenizer.ggml.pre"].contents()
    tok, _ = convert_gguf_tokenizer(reader.fields["general.architecture"].contents(), d)
    return [tok.encode(t).ids for t in texts]


def main():
    text = CORPUS.read_text()
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "gpt2-bpe").mkdir(parents=True)
    (OUT / "llama-spm").mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gpt2 = train_gpt2(text, tmp)
        gpt2.save(str(OUT / "gpt2-bpe" / "tokenizer.json"))
        write_gpt2_gguf(gpt2, OUT / "gpt2-bpe.gguf")

        model_file = train_sentencepiece(text, tmp)
        shutil.copy(model_file, OUT / "llama-spm" / "tokenizer.model")
        llama = convert_llama(model_file)
        llama.save(str(OUT / "llama-spm" / "tokenizer.json"))
        write_llama_gguf(model_file, OUT / "llama-spm.gguf")
    write_bert_gguf(OUT / "bert.gguf")

    expected = {
        "generator": "python/make_tokenizer_fixtures.py",
        "tokenizers_version": tokenizers.__version__,
        "sentencepiece_version": spm.__version__,
        "gguf_version": __import__("importlib.metadata").metadata.version("gguf"),
        "texts": TEXTS,
        "tokenizers": {},
    }
    sp = spm.SentencePieceProcessor(model_file=str(OUT / "llama-spm" / "tokenizer.model"))
    for name, gguf_name in [("gpt2-bpe", "gpt2-bpe.gguf"), ("llama-spm", "llama-spm.gguf")]:
        tok = Tokenizer.from_file(str(OUT / name / "tokenizer.json"))
        ids = [tok.encode(t).ids for t in TEXTS]
        if name == "llama-spm":
            sp_ids = [[sp.bos_id()] + sp.encode(t) for t in TEXTS]
            # sentencepiece reads "<s>" in the text as characters; tokenizer.json as the BOS token.
            checked = [(t, a, b) for t, a, b in zip(TEXTS, ids, sp_ids) if "<s>" not in t and "</s>" not in t]
            for t, a, b in checked:
                assert a == b, f"tokenizer.json and sentencepiece differ on {t[:40]!r}"
            print(f"llama-spm: tokenizer.json ids == sentencepiece ids on all {len(checked)} texts without <s>/</s>")
        try:
            tf = transformers_gguf_ids(OUT / gguf_name, TEXTS)
            # Its backend tokenizer leaves BOS to the Python wrapper: compare without it.
            bos = [a[0] for a in ids if a][:1] if name == "llama-spm" else []
            tf = [bos + b for b in tf]
            diff = [repr(t[:30]) for t, a, b in zip(TEXTS, ids, tf) if a != b]
            print(f"{name}: transformers' GGUF tokenizer differs from tokenizer.json on {len(diff)} texts: {diff}")
        except Exception as e:  # informative only
            print(f"{name}: transformers' GGUF tokenizer not compared ({type(e).__name__}: {e})")
        # A few single ids to show: the first ids of the multilingual text, the special tokens,
        # and every byte-fallback / newline-ish token met.
        named = ["Ġthe", "Ċ", "ĠĠ", "▁the", "▁", "<0x0A>", "<0x09>", "<0xE4>", "<|endoftext|>", "<s>", "</s>", "<unk>"]
        show = sorted(
            set(ids[0][:12])
            | {i for i in ids[0] if "0x" in (tok.id_to_token(i) or "")}
            | {tok.token_to_id(t) for t in named if tok.token_to_id(t) is not None}
        )
        expected["tokenizers"][name] = {
            "tokenizer_json": f"{name}/tokenizer.json",
            "gguf": gguf_name,
            "vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "ids": ids,
            "decoded_texts": [tok.decode(i, skip_special_tokens=False) for i in ids],
            "n_ids": sum(len(i) for i in ids),
            "tokens": {str(i): tok.id_to_token(i) for i in show},
            "decoded": {str(i): tok.decode([i], skip_special_tokens=False) for i in show},
        }
        print(f"{name}: vocab {expected['tokenizers'][name]['vocab_size']}, {expected['tokenizers'][name]['n_ids']} ids")
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"fixtures/tokenizers: {total} bytes")


if __name__ == "__main__":
    main()
