"""Which domains a curation filter applies to (``applies_to``), one rule for every filter.

``None`` = every domain; otherwise a list of domains, where an entry ``"!x"`` excludes domain ``x`` (a list
of exclusions only = every domain but those); ``[]`` = no domain (the filter is switched off). Before this
was shared, language ID read ``[]`` as "every domain" while the heuristic filters read it as "none".
"""

from __future__ import annotations

from collections.abc import Sequence


class DomainScope:
    """The parsed ``applies_to`` of one filter."""

    def __init__(self, applies_to: Sequence[str] | str | None) -> None:
        if isinstance(applies_to, str):
            applies_to = [applies_to]
        self.applies_to = None if applies_to is None else tuple(str(d) for d in applies_to)
        entries = self.applies_to or ()
        self._include = frozenset(d for d in entries if not d.startswith("!"))
        self._exclude = frozenset(d[1:] for d in entries if d.startswith("!"))
        self._nothing = self.applies_to == ()

    def __repr__(self) -> str:
        return f"DomainScope({self.applies_to!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DomainScope) and other.applies_to == self.applies_to

    def __hash__(self) -> int:
        return hash(self.applies_to)

    def covers(self, domain: str) -> bool:
        if self._nothing:
            return False
        if self._include and domain not in self._include:
            return False
        return domain not in self._exclude
