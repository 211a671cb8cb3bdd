#!/usr/bin/env python3
"""Expected chat-template renderings for tests/test_chat_template.c.

Renders every tests/fixtures/chat/<name>.jinja (real models' chat templates, provenance in
tests/fixtures/chat/README.md) with transformers' own renderer (render_jinja_template: the
sandboxed Jinja environment, trim_blocks/lstrip_blocks, raise_exception, strftime_now that
apply_chat_template uses) for three fixed conversations, add_generation_prompt=True, and
writes <name>.<conversation>.txt with the exact bytes. A template that refuses a conversation
(e.g. Gemma 2 has no system role) gets no file; the C test skips that case.

Run with the shared venv (transformers 5.x):  /work/venv/bin/python scripts/chat_fixtures/make_fixtures.py
The conversations and the bos/eos texts must stay equal to those in tests/test_chat_template.c.
"""
import os
import sys

from transformers.utils.chat_template_utils import render_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "..", "tests", "fixtures", "chat")

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
TURNS = [
    {"role": "user", "content": "Hello!"},
    # leading/trailing spaces: some templates trim content, others keep it
    {"role": "assistant", "content": "  Hi there. How can I help?  "},
    {"role": "user", "content": "What is the capital of France?"},
]
CONVERSATIONS = {
    "sys": [SYSTEM] + TURNS,
    "nosys": TURNS,
    "single": [{"role": "user", "content": "What is the capital of France?"}],
    # Unicode whitespace (NBSP, ideographic space, line separator) that str.strip() removes
    "unicode": [{"role": "user", "content": "\u00a0Bonjour\u3000"},
                {"role": "assistant", "content": "\u2028 Salut !\u00a0\u2003"},
                {"role": "user", "content": "\u3000Paris ?\u0085"}],
}
# name -> (bos_token, eos_token) of the model the template comes from
MODELS = {
    "chatml_smollm2": ("<|im_start|>", "<|im_end|>"),
    "chatml_qwen25": (None, "<|im_end|>"),
    "gemma3": ("<bos>", "<eos>"),
    "gemma2": ("<bos>", "<eos>"),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama31": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama2": ("<s>", "</s>"),
    "llama2_plain": ("<s>", "</s>"),
    "mistral_v1": ("<s>", "</s>"),
    "mistral_v3": ("<s>", "</s>"),
    "mistral_v3_tekken": ("<s>", "</s>"),
    "mistral_v7": ("<s>", "</s>"),
    "phi3": ("<s>", "<|endoftext|>"),
    "zephyr": ("<s>", "</s>"),
}


def main():
    for name, (bos, eos) in MODELS.items():
        with open(os.path.join(FIX, name + ".jinja"), encoding="utf-8") as f:
            tmpl = f.read()
        for conv_name, conv in CONVERSATIONS.items():
            out = os.path.join(FIX, f"{name}.{conv_name}.txt")
            try:
                text = render_jinja_template(conversations=[conv], chat_template=tmpl,
                                             add_generation_prompt=True, bos_token=bos,
                                             eos_token=eos)
            except Exception as e:  # the template refuses this conversation
                print(f"{name}.{conv_name}: refused ({e})", file=sys.stderr)
                if os.path.exists(out):
                    os.remove(out)
                continue
            if isinstance(text, tuple):
                text = text[0]
            if isinstance(text, list):
                text = text[0]
            with open(out, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            print(f"{name}.{conv_name}: {text!r}")


if __name__ == "__main__":
    main()
