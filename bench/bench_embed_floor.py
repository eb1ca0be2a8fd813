"""Where the warm question embedding's time goes (issue #10's 3 ms target): the exported
all-MiniLM-L6-v2 graph timed at several input lengths and thread counts, and the int8 graphs
that would read fewer bytes, with their lowest cosine against the fp32 graph.

    .venv/bin/python bench/bench_embed_floor.py [--texts 2000] [--runs 300]

If a 4-token input costs nearly as much as a 16-token question, a pass is bound by reading the
weights from memory, not by arithmetic. The int8 graphs are built in a temporary folder with
ONNX Runtime's quantisers: dynamic (weights and activations, per channel) and, when `onnx_ir`
is installed, 8-bit weight-only (MatMulNBits, blocks of 32). Cosines are over RealTime QA
questions and passages (``--data``) embedded by both graphs; 0.9999 is what the index needs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.embedding.base import bundled_model_path
from qa.embedding.model_io import load_tokenizer, mean_pool, pad, read_model_config
from qa.embedding.onnx import ensure_export

QUESTION = "Which company announced a recall of 1.8 million vehicles this week?"


def session(graph: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def time_ms(run: Any, inputs: dict[str, np.ndarray], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(None, inputs)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[runs // 10 :])


def texts(data: Path, limit: int) -> list[str]:
    out: list[str] = []
    for path in sorted(data.glob("*_qa.jsonl")):
        out += [json.loads(line)["question_sentence"] for line in path.open() if line.strip()]
    for path in sorted(data.glob("*_gcs.jsonl")):
        for line in path.open():
            for result in json.loads(line).get("search_result", [])[:3]:
                out.append((result.get("text") or "")[:1200])
        if len(out) >= limit:
            break
    return [t for t in out if t.strip()][:limit]


def vectors(graph: Path, tokenizer: Any, batch: list[str]) -> np.ndarray:
    run = session(graph, 2).run
    encodings = tokenizer.encode_batch(batch)
    parts = []
    for i in range(0, len(encodings), 16):
        inputs = pad(encodings[i : i + 16])
        parts.append(mean_pool(run(None, inputs)[0], inputs["attention_mask"]))
    return np.concatenate(parts)


def int8_graphs(plain: Path, folder: Path) -> dict[str, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graphs = {"int8 dynamic, per channel": folder / "dynamic.onnx"}
    quantize_dynamic(
        plain, graphs["int8 dynamic, per channel"], weight_type=QuantType.QInt8, per_channel=True
    )
    try:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError:
        print("(no onnx_ir: the weight-only graph is skipped)")
        return graphs
    quantizer = MatMulNBitsQuantizer(onnx.load(plain), bits=8, block_size=32, is_symmetric=True)
    quantizer.process()
    graphs["int8 weights only (MatMulNBits)"] = folder / "nbits.onnx"
    quantizer.model.save_model_to_file(str(graphs["int8 weights only (MatMulNBits)"]))
    return graphs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared/benchmarks/realtimeqa/2024q1"
    )
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    if not sorted(args.data.glob("*_qa.jsonl")):
        parser.error(f"--data {args.data}: no RealTime QA questions (*_qa.jsonl) there")
    model = Path(bundled_model_path())
    plain = ensure_export(model)
    tokenizer = load_tokenizer(model, read_model_config(model)[1])
    question = pad(tokenizer.encode_batch([QUESTION]))
    short = {k: v[:, :4] for k, v in question.items()}
    print(f"fp32 graph {plain}: question of {question['input_ids'].shape[1]} word pieces")
    for threads in (1, 2):
        run = session(plain, threads).run
        print(
            f"  {threads} thread(s): 4 word pieces {time_ms(run, short, args.runs):.2f} ms, "
            f"the question {time_ms(run, question, args.runs):.2f} ms"
        )
    sample = texts(args.data, args.texts)
    expected = vectors(plain, tokenizer, sample)
    with tempfile.TemporaryDirectory() as tmp:
        for name, graph in int8_graphs(plain, Path(tmp)).items():
            cosines = (vectors(graph, tokenizer, sample) * expected).sum(axis=1)
            run = session(graph, 2).run
            print(
                f"{name}: the question {time_ms(run, question, args.runs):.2f} ms on 2 threads; "
                f"cosine to fp32 over {len(sample)} texts: lowest {cosines.min():.6f}, "
                f"mean {cosines.mean():.6f}"
            )


if __name__ == "__main__":
    main()
