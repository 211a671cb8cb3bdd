#!/usr/bin/env python3
"""Generate tokenizer test vectors (text -> ids) with the Hugging Face `tokenizers` library.

Run by hand, never in CI; the output is committed under tests/fixtures/tok_vectors/ and checked by
tests/test_tokenizer_hf.c, which must reproduce every id exactly.

    python3 -m venv /work/venv-tok && /work/venv-tok/bin/pip install tokenizers
    /work/venv-tok/bin/python scripts/tok_vectors/make_vectors.py --shared /work/shared [--only NAME]

(The trainer breaks ties in an order of its own: regenerating rewrites the trained_* files with
other vocabularies, each still consistent with its ids.)

texts.json holds the texts; every other file is one tokenizer and the ids of the first
len(ids) texts:
    {"generator": ..., "tokenizer": T, "ids": [[ids], ...], "with_special_text": s, "with_special": [ids]}
T is {"shared": "models/.../tokenizer.json", "set": {top-level key: value}, "model": {model key:
value}} (a shared file with some keys replaced; the C test applies the same replacements) or
{"inline": {...}} (a small tokenizer trained here, written whole). Ids are
encode(text, add_special_tokens=False); "with_special" is with_special_text encoded with
add_special_tokens=True (the post-processor's BOS). The texts: hand-written corner cases (Unicode forms, case, accents,
whitespace runs, punctuation, digits, quotes and dashes, emoji, CJK, added-token strings), the
TinyStories sample's stories and WikiText-2 test lines.
"""
import argparse
import copy
import json
import os
import sys

import tokenizers
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SYNTH = [
    "", " ", "  ", "\t", "\n", " \n \n", "a", "Hello world", " Hello world", "Hello  world  ",
    "ONCE UPON A TIME", "Once upon a time, there was a little girl named Lily.",
    "\u201cHello,\u201d she said \u2013 and left\u2026", "\u201c\u201d\u2013\u2014\u2018\u2019",
    "caf\u00e9 cafe\u0301 na\u00efve \u00c5ngstr\u00f6m \u212b", "\ufb01ne \ufb02ow \uff21\uff22\uff23 \u2460\u2461 x\u00b2",
    "\u0130stanbul \u0130I \u03a3\u039f\u03a3 \u00df \u1e9e", "Stra\u00dfe STRASSE", "\u00e0\u00e8\u00ec\u00f2\u00f9 \u00c0\u00c8",
    "tab\there\r\nwindows\r\n", "   leading and trailing   ", "\u3000ideographic\u00a0nbsp\u2009thin",
    "3.14159 and 1,000,000 or \u0661\u0662\u0663 \u2167 \u00bd", "x=1+2*3/4-5; y<z>w|v~u^t`s",
    "Don't you're we've I'm they'll he'd it's", "e-mail: someone@example.com (tel. +1-555-0100)",
    "\U0001f999 llama \U0001f600\U0001f44d\U0001f3fd emoji", "\u4f60\u597d\u4e16\u754c \u3053\u3093\u306b\u3061\u306f \ud55c\uad6d\uc5b4",
    "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u0928\u092e\u0938\u094d\u0924\u0947",
    "<unk> <s></s> <|endoftext|> <|start_story|>x<|end_story|>", "a<unk>b <|end_story|> world",
    "\u2581already \u2581 metaspace\u2581", "under_score __init__ snake_case_name", "!!! ??? ... ,,, ---",
    "   \n\n\t  mixed   \t whitespace \n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "The year 2024 had 366 days; 12345678901234567890.",
]


def wikitext_lines(shared, n):
    p = os.path.join(shared, "data", "wikitext-2-raw-v1.test.hfjoin.txt")
    out = []
    with open(p, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip() and len(line) < 1500:
                out.append(line)
            if len(out) >= n:
                break
    return out


def stories(shared):
    with open(os.path.join(shared, "data", "tinystories_sample.txt"), encoding="utf-8") as f:
        text = f.read()
    return [u.strip(" \r\n") for u in text.split("<|endoftext|>") if u.strip(" \r\n")]


def load_shared(shared, rel, set_=None, model=None):
    with open(os.path.join(shared, rel), encoding="utf-8") as f:
        j = json.load(f)
    for k, v in (set_ or {}).items():
        j[k] = v
    for k, v in (model or {}).items():
        j["model"][k] = v
    j["truncation"] = None
    j["padding"] = None
    return j


def train(kind, texts, vocab=320, **kw):
    """A small BPE trained here (for continuing_subword_prefix / end_of_word_suffix / byte-level)."""
    bpe_kw = {k: kw[k] for k in ("continuing_subword_prefix", "end_of_word_suffix", "byte_fallback") if k in kw}
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=kw.get("fuse_unk", False), **bpe_kw))
    if kind == "bytelevel":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=kw.get("aps", False))
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        alphabet = []
    tr = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=alphabet,
                             show_progress=False, **{k: kw[k] for k in ("continuing_subword_prefix",
                                                                          "end_of_word_suffix") if k in kw})
    tok.train_from_iterator(texts, tr)
    j = json.loads(tok.to_str())
    if kind == "bytelevel":
        j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    return j


TS = "models/TinyStories-656K/tokenizer.json"
GPT2 = "models/gpt2-tokenizer/tokenizer.json"
PREPEND = [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]


def seq_norm(*ns):
    return {"type": "Sequence", "normalizers": list(ns)}


def meta(scheme="first", split=True):
    return {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split}


def bytelevel(aps=False, regex=True):
    return {"type": "ByteLevel", "add_prefix_space": aps, "trim_offsets": True, "use_regex": regex}


def split(pattern, behavior, invert=False, literal=False):
    return {"type": "Split", "pattern": {"String" if literal else "Regex": pattern}, "behavior": behavior,
            "invert": invert}


def pre_seq(*ps):
    return {"type": "Sequence", "pretokenizers": list(ps)}


LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def specs(shared, train_texts):
    """(name, tokenizer spec, number of WikiText lines)."""
    s = []

    def ts(name, n=8, set_=None, model=None):
        s.append((name, {"shared": TS, "set": set_ or {}, "model": model or {}}, n))

    def g2(name, n=8, set_=None, model=None):
        s.append((name, {"shared": GPT2, "set": set_ or {}, "model": model or {}}, n))

    # the shared tokenizers as they are
    ts("tinystories656k", 200)
    g2("gpt2", 200)
    # normalizers (TinyStories-656K vocabulary: BPE, byte_fallback, fuse_unk, bytes missing)
    ts("ts_lowercase", set_={"normalizer": seq_norm({"type": "Lowercase"}, *PREPEND)})
    ts("ts_nfkc", set_={"normalizer": seq_norm({"type": "NFKC"}, *PREPEND)})
    ts("ts_nfc", set_={"normalizer": seq_norm({"type": "NFC"}, *PREPEND)})
    ts("ts_nfd_strip_accents", set_={"normalizer": seq_norm({"type": "NFD"}, {"type": "StripAccents"}, *PREPEND)})
    ts("ts_nfkd_lowercase", set_={"normalizer": seq_norm({"type": "NFKD"}, {"type": "Lowercase"}, *PREPEND)})
    ts("ts_strip", set_={"normalizer": seq_norm({"type": "Strip", "strip_left": True, "strip_right": True}, *PREPEND)})
    ts("ts_strip_right", set_={"normalizer": seq_norm({"type": "Strip", "strip_left": False, "strip_right": True},
                                                      *PREPEND)})
    ts("ts_replace_regex", set_={"normalizer": seq_norm(
        {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}, *PREPEND)})
    ts("ts_replace_quotes", set_={"normalizer": seq_norm(
        {"type": "Replace", "pattern": {"String": "\u201c"}, "content": "\""},
        {"type": "Replace", "pattern": {"Regex": "[\u2018\u2019]"}, "content": "'"}, *PREPEND)})
    ts("ts_no_normalizer", set_={"normalizer": None})
    # pre-tokenizers
    ts("ts_metaspace_first_split", set_={"normalizer": None, "pre_tokenizer": meta("first", True)})
    ts("ts_metaspace_first_nosplit", set_={"normalizer": None, "pre_tokenizer": meta("first", False)})
    ts("ts_metaspace_always", set_={"normalizer": None, "pre_tokenizer": meta("always", True)})
    ts("ts_metaspace_never", set_={"normalizer": None, "pre_tokenizer": meta("never", True)})
    ts("ts_metaspace_legacy", set_={"normalizer": None, "pre_tokenizer": {
        "type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True}})
    ts("ts_whitespace", set_={"normalizer": None, "pre_tokenizer": {"type": "Whitespace"}})
    ts("ts_whitespacesplit_meta", set_={"normalizer": None, "pre_tokenizer": pre_seq(
        {"type": "WhitespaceSplit"}, meta("always", False))})
    ts("ts_bert_pretok", set_={"normalizer": None, "pre_tokenizer": {"type": "BertPreTokenizer"}})
    ts("ts_chardelim", set_={"normalizer": None, "pre_tokenizer": {"type": "CharDelimiterSplit", "delimiter": "e"}})
    for beh in ("Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"):
        ts("ts_punct_" + beh.lower(), set_={"pre_tokenizer": pre_seq(
            {"type": "Punctuation", "behavior": beh}, {"type": "Digits", "individual_digits": True})})
        ts("ts_split_ws_" + beh.lower(), set_={"pre_tokenizer": split("\u2581+", beh)})
    ts("ts_split_invert", set_={"pre_tokenizer": split(r"[\p{L}\u2581]+", "Removed", invert=True)})
    ts("ts_split_string", set_={"pre_tokenizer": split("\u2581", "MergedWithNext", literal=True)})
    ts("ts_digits_contiguous", set_={"pre_tokenizer": {"type": "Digits", "individual_digits": False}})
    # BPE model options
    ts("ts_nofuse", model={"fuse_unk": False})
    ts("ts_no_byte_fallback", model={"byte_fallback": False})
    ts("ts_no_unk", model={"byte_fallback": False, "unk_token": None})
    ts("ts_ignore_merges", model={"ignore_merges": True})
    ts("ts_dropout_zero", model={"dropout": 0.0})
    # byte-level (GPT-2 vocabulary)
    g2("gpt2_prefix_space", set_={"pre_tokenizer": bytelevel(aps=True)})
    g2("gpt2_llama3_split", set_={"pre_tokenizer": pre_seq(split(LLAMA3_RE, "Isolated"), bytelevel(regex=False))},
       model={"ignore_merges": True})
    g2("gpt2_digits_split", set_={"pre_tokenizer": pre_seq(
        {"type": "Digits", "individual_digits": True}, bytelevel())})
    g2("gpt2_whitespace", set_={"pre_tokenizer": pre_seq({"type": "Whitespace"}, bytelevel(regex=False))})
    g2("gpt2_nfkc_lowercase", set_={"normalizer": seq_norm({"type": "NFKC"}, {"type": "Lowercase"})})
    # transformers' conversion of a GGUF byte-level vocabulary (SmolLM2) writes byte_fallback and
    # a ByteFallback decoder next to the ByteLevel pre-tokenizer
    g2("gpt2_gguf_converted", set_={"normalizer": {"type": "Sequence", "normalizers": []}, "decoder": {
        "type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}, {
            "type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {
            "type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]}},
       model={"byte_fallback": True, "fuse_unk": True, "unk_token": "<|endoftext|>"})
    g2("gpt2_bytelevel_normalizer", set_={"normalizer": {"type": "ByteLevel"}, "pre_tokenizer": split(
        " ?[^ ]+", "Isolated")})
    # small vocabularies trained here
    s.append(("trained_cont_prefix", {"inline": train("whitespace", train_texts, continuing_subword_prefix="##")}, 8))
    s.append(("trained_eow_suffix", {"inline": train("whitespace", train_texts, end_of_word_suffix="</w>")}, 8))
    s.append(("trained_prefix_suffix_fuse", {"inline": train(
        "whitespace", train_texts, continuing_subword_prefix="##", end_of_word_suffix="</w>", fuse_unk=True)}, 8))
    s.append(("trained_bytelevel", {"inline": train("bytelevel", train_texts, vocab=400, aps=True)}, 8))
    return s


def build(shared, spec):
    if "inline" in spec:
        return copy.deepcopy(spec["inline"])
    return load_shared(shared, spec["shared"], spec.get("set"), spec.get("model"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.environ.get("LQ_SHARED", os.path.join(REPO, "..", "shared")))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "tok_vectors"))
    ap.add_argument("--only", help="regenerate only this vector file (name without .json)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    st = stories(a.shared)
    wiki = wikitext_lines(a.shared, 200)
    train_texts = st + wikitext_lines(a.shared, 400)
    texts = SYNTH + st + wiki
    write_json(os.path.join(a.out, "texts.json"), {
        "generator": "scripts/tok_vectors/make_vectors.py",
        "note": "hand-written cases, the TinyStories sample's stories, WikiText-2 test lines",
        "texts": texts})
    total = 0
    for name, spec, n_wiki in specs(a.shared, train_texts):
        if a.only and name != a.only:
            continue
        tok = Tokenizer.from_str(json.dumps(build(a.shared, spec)))
        n = len(SYNTH) + len(st) + n_wiki
        doc = {
            "generator": "scripts/tok_vectors/make_vectors.py with tokenizers %s" % tokenizers.__version__,
            "tokenizer": spec,
            "with_special_text": "Hello world",
            "with_special": tok.encode("Hello world", add_special_tokens=True).ids,
            "ids": [tok.encode(t, add_special_tokens=False).ids for t in texts[:n]],
        }
        write_json(os.path.join(a.out, name + ".json"), doc)
        total += n
        print("%-32s %4d cases" % (name, n))
    # the whole WikiText-2 test split in one encode (what a perplexity run tokenizes): the number
    # of ids and two checksums (sum of ids; sum of (position + 1) * id, modulo 2^64)
    if a.only:
        return
    with open(os.path.join(a.shared, "data", "wikitext-2-raw-v1.test.hfjoin.txt"), encoding="utf-8") as f:
        whole = f.read()
    sums = {}
    for name, rel in (("tinystories656k", TS), ("gpt2", GPT2)):
        ids = Tokenizer.from_str(json.dumps(load_shared(a.shared, rel))).encode(whole, add_special_tokens=False).ids
        sums[name] = {"tokenizer": rel, "n": len(ids), "sum": sum(ids),
                      "wsum": sum((i + 1) * x for i, x in enumerate(ids)) % (1 << 64)}
        print("wikitext-2 whole file, %s: %d ids" % (name, len(ids)))
    write_json(os.path.join(a.out, "wikitext_whole.json"), {
        "generator": "scripts/tok_vectors/make_vectors.py with tokenizers %s" % tokenizers.__version__,
        "text": "data/wikitext-2-raw-v1.test.hfjoin.txt", "add_special_tokens": False, "results": sums})
    print("total %d cases in %s" % (total, a.out), file=sys.stderr)


def write_json(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
