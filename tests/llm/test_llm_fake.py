"""The scripted fake client, the registry, and the offline token counter."""

from __future__ import annotations

import os

import pytest
from llm_helpers import KHRENIN, make_prompt

from qa.core.config import Settings
from qa.core.types import Completion, QAError
from qa.llm import LLM, available, create
from qa.llm.fake import DEFAULT_REPLY, FakeLLM
from qa.llm.tokens import cache_dir, count_tokens, encoding

PROMPT = make_prompt("What did Khrenin say about India?", [KHRENIN])


def test_replies_in_order_then_repeats_last() -> None:
    llm = FakeLLM(["first [1].", "second [1]."])
    texts = [llm.generate(PROMPT).text for _ in range(3)]
    assert texts == ["first [1].", "second [1].", "second [1]."]
    assert llm.calls == [PROMPT, PROMPT, PROMPT]


def test_stream_word_by_word() -> None:
    llm = FakeLLM(["Khrenin said India is a priority [1]."])
    out = list(llm.stream(PROMPT))
    assert out[:-1] == ["Khrenin ", "said ", "India ", "is ", "a ", "priority ", "[1]."]
    final = out[-1]
    assert isinstance(final, Completion) and final.text == "Khrenin said India is a priority [1]."
    assert final.usage.completion_tokens == 7 and final.usage.prompt_tokens > 0
    assert llm.calls == [PROMPT]


def test_registry_default_reply() -> None:
    llm = create("fake", Settings())
    assert isinstance(llm, FakeLLM) and isinstance(llm, LLM)
    assert llm.generate(PROMPT).text == DEFAULT_REPLY
    assert llm.model == "fake" and llm.context_window > 0


def test_registry_lists_every_client() -> None:
    assert {"openai", "local", "extractive", "fake"} <= set(available())
    with pytest.raises(QAError, match="unknown model client"):
        create("nope", Settings())


def test_clients_satisfy_the_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for name in ("openai", "local", "extractive", "fake"):
        llm = create(name, Settings())
        assert isinstance(llm, LLM) and llm.name == name
        assert llm.model and llm.context_window > 0


def test_count_tokens_offline() -> None:
    assert count_tokens("") == 0
    assert count_tokens("Hello world") == 2
    assert count_tokens("Hello world", "gpt-4") == 2  # cl100k_base
    assert count_tokens("<|endoftext|>") > 1  # special-token text counts as plain text
    assert encoding("no-such-model").name == "o200k_base"
    assert encoding("gpt-4").name == "cl100k_base"
    assert encoding() is encoding("gpt-4o")  # cached
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(cache_dir())
