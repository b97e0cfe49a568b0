"""`core/tuples.NamedTuple` builds what `typing.NamedTuple` builds (without importing typing)."""

from __future__ import annotations

import pickle
import typing

import pytest

from gn_jobs_tui.core import tuples
from gn_jobs_tui.core.connection import Target, parse_url
from gn_jobs_tui.core.events import Event
from gn_jobs_tui.core.keys import Keys


def _pair() -> tuple[type, type]:
    made = []
    for base in (tuples.NamedTuple, typing.NamedTuple):
        class Point(base):  # type: ignore[misc, valid-type]
            """A point."""

            x: int
            y: int = 0
            label: str | None = None

            def __repr__(self) -> str:
                return f"<{self.x},{self.y}>"

            @property
            def norm(self) -> int:
                return abs(self.x) + abs(self.y)

            def moved(self, dx: int) -> Point:
                return self._replace(x=self.x + dx)

        made.append(Point)
    return made[0], made[1]


def test_the_class_is_the_one_typing_would_build() -> None:
    ours, theirs = _pair()
    assert issubclass(ours, tuple) and ours.__mro__[1:] == theirs.__mro__[1:]
    for attr in ("_fields", "_field_defaults", "__doc__", "__module__", "__qualname__", "__name__"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    # typing wraps the (string) annotations in ForwardRef; both resolve to the same types.
    assert typing.get_type_hints(ours) == typing.get_type_hints(theirs) == {
        "x": int, "y": int, "label": str | None}
    a, b = ours(3, -4), theirs(3, -4)
    assert a == b == (3, -4, None) and repr(a) == repr(b) == "<3,-4>"
    assert a.norm == b.norm == 7 and a.moved(1) == b.moved(1) == (4, -4, None)
    assert type(a.moved(1)) is ours and a._asdict() == b._asdict()
    assert ours._make([1, 2, "l"]) == theirs._make([1, 2, "l"])
    with pytest.raises(TypeError):
        ours()  # x has no default
    with pytest.raises(AttributeError):
        a.x = 5  # type: ignore[misc]


def test_what_typing_refuses_is_refused() -> None:
    for base in (tuples.NamedTuple, typing.NamedTuple):
        with pytest.raises(TypeError, match="Non-default namedtuple field y cannot follow default "
                                            "field x"):
            class Bad(base):  # type: ignore[misc, valid-type]
                x: int = 0
                y: int
        with pytest.raises(AttributeError, match="Cannot overwrite NamedTuple attribute _replace"):
            class Worse(base):  # type: ignore[misc, valid-type]
                x: int

                def _replace(self) -> None:
                    pass


def test_the_contract_tuples_keep_their_api() -> None:
    keys = Keys("p")
    assert Keys() == ("gn-uploader",) and keys.job("j") == "p:jobs:j"
    assert keys._replace(prefix="q").prefix == "q"
    target = parse_url("redis://u:secret@h:1/2")
    assert target.db == 2 and "secret" not in repr(target) and target._replace(db=3).db == 3
    assert Target("redis://x")._fields[:3] == ("url", "kind", "tls")
    event = Event("j", ("status",))
    for value in (keys, target, event):
        assert pickle.loads(pickle.dumps(value)) == value
