"""Bounded, strict YAML reading (pure) for specs and replay mappings.

``yaml.safe_load`` alone builds whatever a file describes: an alias "bomb" (a few lines whose
anchors refer to each other) expands to billions of nodes as soon as anything walks the result,
thousands of nesting levels exhaust Python's recursion, and a duplicated key silently keeps the
last value. :func:`load_yaml` refuses each of these before constructing anything:

* files larger than ``max_bytes`` (default :data:`MAX_BYTES`);
* more than :data:`MAX_NODES` nodes once every alias is expanded (counted on the event stream,
  with each anchor's expanded size, so the count costs one pass over the events);
* nesting deeper than :data:`MAX_DEPTH`;
* a key given twice in one mapping.

It uses libyaml (``CSafeLoader``) where PyYAML was built with it: about 10x faster than the
pure-Python parser. Every problem is a :class:`YamlInputError` with the line it concerns.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 32

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlInputError(ValueError):
    """``where`` is ``line N`` (or ``<file>``), ``value`` what was wrong there."""

    def __init__(self, where: str, value: Any, reason: str):
        self.where = where
        self.value = value
        self.reason = reason
        super().__init__(f"{where}: {reason} (got {value!r})")


class _StrictLoader(_Base):  # type: ignore[misc, valid-type]
    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise YamlInputError(f"line {key_node.start_mark.line + 1}", key,
                                         "duplicate key (YAML would keep only the last one)")
                seen.add(key)
        return super().construct_mapping(node, deep)


def _check_events(text: str) -> None:
    expanded = 0
    anchors: dict[str, int] = {}
    frames: list[tuple[str | None, int]] = []  # (anchor, expanded count at the start)
    for ev in yaml.parse(text, Loader=_Base):
        line = f"line {ev.start_mark.line + 1}" if ev.start_mark else "<file>"
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            frames.append((ev.anchor, expanded))
            expanded += 1
            if len(frames) > MAX_DEPTH:
                raise YamlInputError(line, len(frames), f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, at_start = frames.pop()
            if anchor is not None:
                anchors[anchor] = expanded - at_start
        elif isinstance(ev, yaml.ScalarEvent):
            expanded += 1
            if ev.anchor is not None:
                anchors[ev.anchor] = 1
        elif isinstance(ev, yaml.AliasEvent):
            expanded += anchors.get(ev.anchor, 1)
        if expanded > MAX_NODES:
            raise YamlInputError(line, expanded, f"more than {MAX_NODES} values once aliases are "
                                                 "expanded")


def load_yaml(data: bytes | str, max_bytes: int = MAX_BYTES) -> Any:
    """Decode one YAML document within the bounds above; raise :class:`YamlInputError`."""
    if len(data) > max_bytes:
        raise YamlInputError("<file>", f"{len(data)} bytes", f"larger than the limit of {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise YamlInputError("<file>", f"byte {e.start}", "not UTF-8") from None
    try:
        _check_events(data)
        return yaml.load(data, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "<file>"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise YamlInputError(where, problem[:100], "is not valid YAML") from None
    except RecursionError:  # not reached within MAX_DEPTH; kept as a guard
        raise YamlInputError("<file>", "depth", "nested too deeply") from None
