"""Build a tiny BERT cross-encoder on disk, so that rerank servers can load a model offline.

Run with the Python of a server's environment (it needs ``torch`` and ``transformers``)::

    python -m interop.tiny_model OUT_DIR

Two layers, hidden size 32, random weights from a fixed seed, one output label, and a
WordPiece vocabulary written here (special tokens, the words of the kit's corpus, single
characters and their ``##`` continuations, so any text tokenizes). Random weights give nearly
the same logit for every pair, so the classifier is rescaled and re-centred on the kit's own
(query, document) pairs: logits then spread over about -4..4 and no two documents tie.
Nothing is downloaded; the same seed gives the same weights, hence the same scores.
"""

from __future__ import annotations

import json
import string
import sys
from pathlib import Path

from interop.corpus import DOCUMENTS, all_texts

SEED = 1234
LOGIT_SPREAD = 2.0
# Far above BERT's 0.02, so that attention depends on the words and pairs differ clearly.
INITIALIZER_RANGE = 0.5
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocabulary(corpus: list[str]) -> list[str]:
    """Special tokens, then characters, their ``##`` forms, and the corpus's words."""
    characters = list(string.ascii_lowercase + string.digits + string.punctuation)
    words = sorted(
        {word.strip(string.punctuation).lower() for text in corpus for word in text.split()}
    )
    tokens = [*SPECIAL_TOKENS, *characters, *(f"##{c}" for c in characters)]
    seen = set(tokens)
    for word in words:
        if word and word not in seen:
            tokens.append(word)
            seen.add(word)
    return tokens


def build(out_dir: Path, corpus: list[str]) -> None:
    """Write config, weights and tokenizer files of the tiny cross-encoder to ``out_dir``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_file = out_dir / "vocab.txt"
    vocab_file.write_text("\n".join(vocabulary(corpus)) + "\n", encoding="utf-8")

    torch.manual_seed(SEED)
    config = BertConfig(
        vocab_size=len(vocab_file.read_text(encoding="utf-8").splitlines()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        initializer_range=INITIALIZER_RANGE,
        num_labels=1,
        id2label={0: "LABEL_0"},
        label2id={"LABEL_0": 0},
        architectures=["BertForSequenceClassification"],
    )
    model = BertForSequenceClassification(config)
    model.eval()
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)
    tokenizer.model_max_length = 512
    queries, documents = corpus[: len(corpus) - len(DOCUMENTS)], DOCUMENTS
    pairs = [(query, document) for query in queries for document in documents]
    with torch.no_grad():
        encoded = tokenizer(
            [q for q, _ in pairs], [d for _, d in pairs], padding=True, return_tensors="pt"
        )
        logits = model(**encoded).logits.squeeze(-1)
        scale = LOGIT_SPREAD / float(logits.std())
        model.classifier.weight.mul_(scale)
        model.classifier.bias.copy_(model.classifier.bias * scale - float(logits.mean()) * scale)
    model.save_pretrained(out_dir, safe_serialization=True)

    tokenizer.save_pretrained(out_dir)
    (out_dir / "interop-tiny-model.json").write_text(
        json.dumps({"seed": SEED, "logit_spread": LOGIT_SPREAD, "scale": scale}) + "\n",
        encoding="utf-8",
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m interop.tiny_model OUT_DIR", file=sys.stderr)
        return 2
    build(Path(argv[0]), all_texts())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
