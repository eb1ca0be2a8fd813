"""The feeds' validators (ETag, Last-Modified) between runs, so a feed polled again costs one
304 when unchanged: ``<corpus>/web/.feeds.json``.

Only what a run learnt is written, over what the file holds by then: a run in which no feed
went in (every URL failed, or answered 304) leaves the file as it was, and two runs saving at
once (`qa watch` and ``POST /api/ingest``) keep each other's feeds. A file that cannot be read
is an error naming it, never overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path

from qa.core.locks import folder_lock
from qa.core.types import QAError
from qa.ingest.corpus import WEB_FOLDER, write_atomically

STATE_FILE = ".feeds.json"  # in <corpus>/web/: hidden, so never read as an article


class FeedState:
    """ETag and Last-Modified of each feed, kept beside the articles they led to (deleting
    the folder forgets both, so nothing is skipped wrongly)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = self._read()
        self.learnt: dict[str, dict[str, str]] = {}  # to save: feeds whose validators changed

    @classmethod
    def for_corpus(cls, corpus: Path) -> FeedState:
        return cls(corpus / WEB_FOLDER / STATE_FILE)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            raise QAError(
                f"cannot read the feed state {self.path} ({exc}): fix it, or delete it to "
                "fetch every feed afresh"
            ) from None
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
            for v in data.values()
        ):
            raise QAError(
                f"the feed state {self.path} is not a JSON object of feeds' validators: fix "
                "it, or delete it to fetch every feed afresh"
            )
        return data

    def validators(self, url: str) -> tuple[str, str]:
        known = self.data.get(url, {})
        return known.get("etag", ""), known.get("last_modified", "")

    def remember(self, url: str, etag: str, last_modified: str) -> None:
        entry = {"etag": etag, "last_modified": last_modified}
        if self.data.get(url) != entry:
            self.data[url] = self.learnt[url] = entry

    def save(self) -> None:
        """Write the validators learnt since the last save, if any."""
        if not self.learnt:
            return
        with folder_lock(self.path.parent):  # read, merge and replace as one step
            current = self._read()
            current.update(self.learnt)
            write_atomically(self.path, json.dumps(current, indent=1, sort_keys=True) + "\n")
        self.data, self.learnt = current, {}
