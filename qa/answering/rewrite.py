"""Follow-up questions in a conversation -> standalone questions for retrieval.

A generative client is asked to rewrite (``prompts.REWRITE_SYSTEM``). Without one (extractive),
or when the model's rewrite is unusable, pronouns are replaced by the most recent name the
conversation mentioned, which covers the common "What did he say about X?" follow-up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.core.types import Prompt
from qa.llm import prompts
from qa.llm.base import LLM

PRONOUNS = {
    "he": "{}",
    "she": "{}",
    "him": "{}",
    "they": "{}",
    "them": "{}",
    "his": "{}'s",
    "her": "{}'s",
    "their": "{}'s",
}
# Capitalised words that start questions or sentences and are not names.
NOT_NAMES = {
    "What",
    "Who",
    "When",
    "Where",
    "Why",
    "How",
    "Which",
    "Did",
    "Does",
    "Do",
    "Is",
    "Are",
    "Was",
    "Were",
    "The",
    "A",
    "An",
    "In",
    "On",
    "At",
    "And",
    "But",
    "He",
    "She",
    "They",
    "It",
    "Tell",
    "Please",
    "Can",
    "Could",
    "Would",
    "Should",
    "Minister",
    "Defence",
    "Defense",
    "I",
    "This",
    "That",
    "These",
    "Those",
    "His",
    "Her",
    "Their",
}
NAME = re.compile(r"\b[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+)*")


def last_user_question(messages: Sequence[dict[str, str]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user" and str(message.get("content", "")).strip():
            return str(message["content"]).strip()
    return ""


def needs_rewrite(question: str) -> bool:
    return any(w.lower() in PRONOUNS for w in re.findall(r"[A-Za-z]+", question))


def _last_name(texts: Sequence[str]) -> str | None:
    for text in reversed(texts):
        for match in reversed(list(NAME.finditer(text))):
            words = [w for w in match.group(0).split() if w not in NOT_NAMES]
            if words:
                return words[-1]  # a surname is how follow-ups refer back
    return None


def heuristic_rewrite(messages: Sequence[dict[str, str]]) -> str:
    """Replace pronouns in the last question with the latest name from earlier user turns."""
    question = last_user_question(messages)
    earlier = [str(m.get("content", "")) for m in messages if m.get("role") == "user"][:-1]
    name = _last_name(earlier)
    if name is None:
        return question

    def swap(match: re.Match[str]) -> str:
        return PRONOUNS[match.group(0).lower()].format(name)

    pattern = r"\b(" + "|".join(PRONOUNS) + r")\b"
    return re.sub(pattern, swap, question, flags=re.IGNORECASE)


def rewrite(messages: Sequence[dict[str, str]], llm: LLM | None) -> str:
    """The standalone form of the conversation's last user question."""
    question = last_user_question(messages)
    if len([m for m in messages if m.get("role") == "user"]) < 2 or not needs_rewrite(question):
        return question
    if llm is not None and llm.name == "openai":
        history = "\n".join(f"{m['role']}: {m['content']}" for m in messages[-6:])
        prompt = Prompt(
            question=question,
            passages=(),
            messages=(
                {"role": "system", "content": prompts.REWRITE_SYSTEM},
                {"role": "user", "content": history},
            ),
            max_tokens=80,
        )
        text = llm.generate(prompt).text.strip().strip('"')
        if text and len(text) < 4 * len(question) + 200:
            return text
    return heuristic_rewrite(messages)
