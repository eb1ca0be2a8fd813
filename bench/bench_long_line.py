"""Benchmark chunking of a long article written on a single line, next to the same words in
paragraphs, with the real tokenizer of the bundled embedding model.

    .venv/bin/python bench/bench_long_line.py              # 1 MB and 250 kB
    .venv/bin/python bench/bench_long_line.py --kb 4000

Prints, per size and layout: seconds to chunk, chunks, and the growth of the process's peak
memory (resident set) during chunking. A line without full stops is one "sentence" to Punkt,
the worst case for the chunker (issue #13 reported 161 s and 1.1 GB for 1 MB).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.core.config import EmbeddingSettings, Settings
from qa.core.types import Document
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.ingest import clean
from qa.ingest.chunk import chunks_for


def article(kb: int, one_line: bool) -> Document:
    corpus = Path(__file__).resolve().parent.parent / "corpus"
    vocabulary = sorted({w for p in corpus.glob("*.md") for w in p.read_text().split()})
    rng = random.Random(1)
    words: list[str] = []
    size = 0
    while size < kb * 1000:
        words.append(rng.choice(vocabulary).strip(".!?"))
        size += len(words[-1]) + 1
    if one_line:
        text = " ".join(words)
    else:
        text = "\n\n".join(" ".join(words[i : i + 100]) for i in range(0, len(words), 100))
    return Document("long", "A long article", text, clean(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kb", type=int, nargs="*", default=[250, 1000])
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder(EmbeddingSettings())
    embedder.model  # noqa: B018 - load before timing
    chunking = Settings().chunking
    print("size    layout      seconds  chunks  peak RSS growth MB")
    for kb in args.kb:
        for one_line in (True, False):
            doc = article(kb, one_line)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            chunks = chunks_for(doc, embedder, chunking)
            seconds = time.perf_counter() - started
            growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1000
            layout = "one line" if one_line else "paragraphs"
            print(f"{kb:>4} kB {layout:<11} {seconds:>7.2f} {len(chunks):>7} {growth:>10.0f}")


if __name__ == "__main__":
    main()
