"""YAML front matter of a Markdown article -> its metadata, or :class:`Skip` with one line.

Front matter comes from whoever wrote the file, so it is parsed as untrusted input:

* PyYAML's safe loader (no Python objects), through python-frontmatter's YAML handler;
* aliases (``*name``) are refused: metadata never needs them, and a ~900-byte "billion laughs"
  title made of nested aliases expands to gigabytes once turned into a string;
* a value the loader cannot build (``date: 2024-02-30``, an hour of 25, an integer of more
  digits than Python converts) or nesting deeper than the parser recurses is a reason to skip
  the file, never an exception that aborts the ingest.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import Node, ScalarNode

from qa.ingest.decode import Skip


class _UntrustedLoader(yaml.SafeLoader):
    """The pure-Python safe loader (libyaml's composes in C, where aliases cannot be refused)
    with aliases refused and unbuildable dates reported as YAML errors naming the value."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ComposerError(
                None,
                None,
                f"found an alias (*{event.anchor}): aliases are not allowed in front matter",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:  # "2024-02-30": day is out of range for month
            raise ConstructorError(
                None, None, f"invalid date {node.value!r}: {exc}", node.start_mark
            ) from None


_UntrustedLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _UntrustedLoader.construct_yaml_timestamp
)


def load_front_matter(text: str) -> dict[str, Any]:
    """The mapping in ``text`` (the lines between the ``---`` fences); ``{}`` when empty."""
    from frontmatter.default_handlers import YAMLHandler

    try:
        loaded = YAMLHandler().load(text, Loader=_UntrustedLoader)
    except yaml.YAMLError as exc:
        raise Skip(f"invalid YAML front matter: {exc}".splitlines()[0]) from None
    except RecursionError:
        raise Skip("invalid YAML front matter: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise Skip(f"invalid YAML front matter: {exc}".splitlines()[0]) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise Skip("front matter is not a mapping of keys to values")
    return loaded or {}
