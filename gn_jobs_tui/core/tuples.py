"""`NamedTuple` class syntax without importing `typing` at run time.

`typing` costs about 0.45 MB RSS in every supervisor (one runs per job), and
the supervisor needs it only for three NamedTuples (`Keys`, `Target`,
`Event`). Type checkers see `typing.NamedTuple`; at run time a class written
`class T(NamedTuple): a: int; b: str = ""` becomes the same
`collections.namedtuple` that `typing.NamedTuple` builds: same fields,
defaults, methods, docstring, module and qualified name (tests/test_tuples.py
compares the two). One difference: `__annotations__` keeps the strings that
`from __future__ import annotations` gives, where typing wraps them in
`ForwardRef`; `typing.get_type_hints` resolves both to the same types.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    #: What typing.NamedTuple refuses to let a class body overwrite, and what it does not copy.
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields",
                             "_field_defaults", "_make", "_replace", "_asdict", "_source"})
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _NamedTupleMeta(type):
        def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, object]) -> type:
            if not bases:  # NamedTuple itself
                return super().__new__(mcls, name, bases, ns)
            annotations = ns.get("__annotations__", {})
            assert isinstance(annotations, dict)
            fields = list(annotations)
            default_names: list[str] = []
            for field in fields:
                if field in ns:
                    default_names.append(field)
                elif default_names:
                    raise TypeError(f"Non-default namedtuple field {field} cannot follow default "
                                    f"field{'s' if len(default_names) > 1 else ''} "
                                    f"{', '.join(default_names)}")
            cls = namedtuple(name, fields, defaults=[ns[n] for n in default_names],
                             module=ns["__module__"])
            cls.__annotations__ = dict(annotations)
            for key, value in ns.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"Cannot overwrite NamedTuple attribute {key}")
                if key not in _SPECIAL and key not in fields:
                    setattr(cls, key, value)
            return cls

    class NamedTuple(metaclass=_NamedTupleMeta):
        """Base class: subclass it with annotated fields, as `typing.NamedTuple`."""
