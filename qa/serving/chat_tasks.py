"""Chat clients' own chores sent to model ``qa``: titles, tags, follow-up suggestions.

Open WebUI (0.12.4) asks the chat's model, after each answer, for a title, tags and suggested
follow-ups, each as one ``user`` message built from a template (``open_webui/config.py``,
``DEFAULT_*_GENERATION_PROMPT_TEMPLATE``) that starts with ``### Task:``, holds the
conversation in ``<chat_history>`` as ``USER: ...``/``ASSISTANT: ...`` lines and asks for a JSON
object (``{ "title": ... }``, ``{ "tags": [...] }``, ``{ "follow_ups": [...] }``; search-query
and autocomplete tasks ask for ``{ "queries": [...] }`` and ``{ "text": ... }``). Its
``metadata.task`` marker is removed before the request leaves Open WebUI
(``routers/openai.py`` pops it), so the template is the only mark that reaches ``qa``; the
recorded requests are in ``tests/fixtures/open_webui/``.

Answered as questions, each cost a retrieval and a model call (30 s with the local model) and
came back as "I cannot answer...". Here they are answered at once, without retrieval, in the
exact JSON Open WebUI parses: a title from the first question's own words, ``News`` and the
names asked about as tags, follow-ups about the people and names of the last answer. With a
generative API client configured (``llm.client = "openai"``) the template goes to it instead,
and its reply is used when it parses as the asked-for JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.answering.rewrite import answer_person
from qa.core.types import Prompt
from qa.llm.base import LLM
from qa.text.words import STOPWORDS

# What each known task asks for: the JSON key of its reply, found in the template's output
# line (``JSON format: { "title": ...``); the first key named there decides.
KINDS = ("title", "tags", "follow_ups", "queries", "text")
_HISTORY = re.compile(r"<chat_history>\n?(.*?)\n?</chat_history>", re.DOTALL)
_OUTPUT_KEY = re.compile(r'\{\s*"(\w+)"\s*:')
_TURN = re.compile(r"^(USER|ASSISTANT|SYSTEM): ", re.MULTILINE)
_SOURCES = re.compile(r"\n\n(?:\*\*Sources\*\*|Sources:)\n")
_NAME = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:of\s+|de\s+|al-)?[A-Z][\w'’.-]*)*")
_WORD = re.compile(r"[\w'’-]+")


@dataclass(frozen=True)
class ChatTask:
    """A client's chore: ``kind`` is the JSON key its reply must have (``KINDS``, or another
    key of a template qa does not know), ``turns`` the conversation it is about."""

    kind: str
    prompt: str
    turns: tuple[tuple[str, str], ...]  # (role, text), oldest first

    def questions(self) -> list[str]:
        return [text for role, text in self.turns if role == "user" and text.strip()]

    def last_answer(self) -> str:
        return next((text for role, text in reversed(self.turns) if role == "assistant"), "")


def detect(messages: Sequence[dict[str, str]]) -> ChatTask | None:
    """The chore the last user message asks for, or None for a question to answer. A chore is
    a message that starts with ``### Task:`` and holds a ``<chat_history>`` block (the shape
    of every Open WebUI task template)."""
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        return None
    prompt = str(users[-1].get("content", ""))
    if not prompt.lstrip().startswith("### Task:"):
        return None
    history = _HISTORY.search(prompt)
    if history is None:
        return None
    rest = prompt[: history.start()] + prompt[history.end() :]
    key = _OUTPUT_KEY.search(rest)
    return ChatTask(key.group(1) if key else "", prompt, _turns(history.group(1)))


def _turns(history: str) -> tuple[tuple[str, str], ...]:
    marks = list(_TURN.finditer(history))
    turns = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(history)
        turns.append((mark.group(1).lower(), history[mark.end() : end].strip()))
    return tuple(turns)


def reply(task: ChatTask, llm: LLM | None = None) -> str:
    """The reply text: the generative client's when one is configured and its reply parses,
    else the built-in one (see the module docstring)."""
    if llm is not None and llm.name == "openai" and task.kind in KINDS:
        prompt = Prompt(
            question=task.prompt,
            passages=(),
            messages=({"role": "user", "content": task.prompt},),
            max_tokens=200,
        )
        text = llm.generate(prompt).text.strip()
        if _parses(text, task.kind):
            return text
    return json.dumps(builtin(task), ensure_ascii=False)


def _parses(text: str, kind: str) -> bool:
    try:
        value = json.loads(text[text.find("{") : text.rfind("}") + 1])
    except ValueError:
        return False
    return isinstance(value, dict) and kind in value


def builtin(task: ChatTask) -> dict[str, object]:
    """The reply without a model: cheap, and in the shape Open WebUI parses."""
    questions = task.questions()
    if task.kind == "title":
        return {"title": title(questions[0] if questions else "")}
    if task.kind == "tags":
        return {"tags": ["News", *names(" ".join(questions))[:2]]}
    if task.kind == "follow_ups":
        return {"follow_ups": follow_ups(task.last_answer(), questions)}
    if task.kind == "queries":
        return {"queries": questions[-1:]}
    if task.kind == "text":
        return {"text": ""}  # autocomplete: nothing is better than a guess
    return {task.kind: ""} if task.kind else {}


def title(question: str, most: int = 5) -> str:
    """A few of the question's own words, capitalised: "Who is the Russian defence
    minister?" -> "Russian Defence Minister"."""
    words = [w for w in _WORD.findall(question) if w.lower() not in STOPWORDS]
    if not words:
        return "News question"
    return " ".join(w if w[0].isupper() else w.capitalize() for w in words[:most])


def names(text: str) -> list[str]:
    """Capitalised names in ``text``, in order, each once (opening stopwords left out: a
    question's "What", "Who", "The")."""
    found: list[str] = []
    for match in _NAME.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower() in STOPWORDS:
            words = words[1:]
        name = " ".join(words).strip(".")
        if name and name.lower() not in STOPWORDS and name not in found:
            found.append(name)
    return found


def follow_ups(answer: str, questions: Sequence[str], most: int = 3) -> list[str]:
    """Questions a reader may ask next about what the last answer named: the person it named
    first, then other names in its sentences (none after a refusal that names no one)."""
    body = _SOURCES.split(answer, maxsplit=1)[0].replace("\\", "")
    asked = " ".join(questions).lower()
    person = answer_person(answer, questions[-1] if questions else "") if body.strip() else None
    suggestions = []
    if person:
        suggestions += [f"What has {person} said recently?", f"What is {person}'s background?"]
    for name in names(body.replace("*", "")):
        if person and (name in person or person in name):
            continue
        if name.lower() not in asked:  # the user asked about it already
            suggestions.append(f"What is the latest news about {name}?")
    return suggestions[:most]
