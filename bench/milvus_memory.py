"""Memory a Milvus deployment needs per million passages, by dense index type
(docs/how-to/milvus.md). Arithmetic from the index structures, not a measurement:

* raw vectors: dim x 4 bytes (float32);
* HNSW (M links per node, 2M on the base layer): the vectors plus ~2M x 4-byte neighbour ids on
  the base layer and ~1/M of that again on the upper layers;
* IVF_FLAT: the vectors plus an 8-byte id each (the centroids are negligible);
* IVF_PQ (m sub-vectors of 8 bits): m bytes plus the 8-byte id;
* DISKANN: Milvus keeps PQ codes of pq_code_budget_gb_ratio (default 0.125) of the raw size in
  memory; the full vectors and the graph (max_degree 56 ids) live on the SSD;
* BM25 sparse vectors: one (4-byte term, 4-byte weight) pair per distinct term of a passage.

    python bench/milvus_memory.py [--dim 384] [--terms 81] [--text-bytes 1500] [--passages 3e7]
"""

from __future__ import annotations

import argparse


def per_million(dim: int, terms: int, text_bytes: int) -> list[tuple[str, float, float]]:
    """(what, GB in memory, GB on SSD) per million passages."""
    n = 1_000_000
    raw = n * dim * 4
    m = 16
    return [
        ("raw float32 vectors", raw / 1e9, 0.0),
        ("HNSW M=16", (raw + n * 2 * m * 4 * (1 + 1 / m)) / 1e9, 0.0),
        ("IVF_FLAT", (raw + n * 8) / 1e9, 0.0),
        ("IVF_PQ m=dim/8", (n * (dim // 8) + n * 8) / 1e9, 0.0),
        ("DISKANN", raw * 0.125 / 1e9, (raw + n * 56 * 4) / 1e9),
        ("BM25 sparse index", n * terms * 8 / 1e9, 0.0),
        ("passage text + metadata (mmap-able)", n * text_bytes / 1e9, 0.0),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--terms", type=int, default=81, help="distinct BM25 terms a passage")
    # Measured on 5,000 chunks of the RealTime QA quarter: 81 distinct terms, 1,529 bytes of
    # passage, title, source, URL and analysed keywords a chunk.
    parser.add_argument("--text-bytes", type=int, default=1500, help="stored bytes a passage")
    parser.add_argument("--passages", type=float, default=30e6, help="for the total column")
    args = parser.parse_args()
    scale = args.passages / 1e6
    print(f"per million {args.dim}-d passages, and for {args.passages:.0e} passages")
    print(f"{'':38} {'RAM GB/M':>9} {'SSD GB/M':>9} {'RAM GB total':>13}")
    for name, ram, ssd in per_million(args.dim, args.terms, args.text_bytes):
        print(f"{name:38} {ram:9.2f} {ssd:9.2f} {ram * scale:13.1f}")


if __name__ == "__main__":
    main()
