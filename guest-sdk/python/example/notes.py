"""A short example: notes with a view, a mutating method, an event and a
counter. Build it with `scripts/build-polyglot-apps --examples`."""

from __future__ import annotations

from mero_sdk import emit, event, export, init, mutate, state, view
from mero_sdk.collections import Counter, LwwRegister, UnorderedMap


@event
class Written:
    title: str


@state(package="notes-py")
class Notes:
    notes: UnorderedMap[str, LwwRegister[str]]
    writes: Counter

    @init
    def init() -> Notes:
        return Notes(notes=UnorderedMap(), writes=Counter())

    @mutate
    def write(self, title: str, body: str) -> int:
        """Stores a note; returns how many writes there were."""
        self.notes.insert_value(title, body)
        emit(Written(title))
        return self.writes.increment()

    @view
    def read(self, title: str) -> str | None:
        """A read-only view: the node refuses its writes."""
        return self.notes.get_value(title)


App = export(Notes)
