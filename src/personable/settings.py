"""The building blocks of personable.yaml's schema (pydantic v2), and the
translation of pydantic's errors into the project's ``Problem`` list.

Every section of the file is a :class:`Section`:

- unknown keys are errors, named with their path (a typo must never be ignored);
- types are strict: ``"8787"`` is not a port and ``true`` is not a number (YAML
  and the ``PERSONABLE_*`` overrides already give real ints, floats and bools);
- a key set to null (``quality:`` with nothing under it) means "not set", so the
  default applies -- unless the field itself accepts null.

Checks across fields (``review_probability <= match_probability``, blocking
rules naming configured fields, segment references, ...) raise
:func:`fail` from a validator, so they are reported together with the type
errors of the rest of the file, each with its own path.

Kept free of heavy imports: ``import personable.config`` must stay fast (see
tests/test_import_hygiene.py).
"""

from __future__ import annotations

import ast
import difflib
import inspect
import re
import textwrap
import types
from typing import Annotated, Any, Callable, Iterable, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Tag, ValidationError, WithJsonSchema
from pydantic import model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .errors import Problem

# Tags of the unions built by one_of(); they appear in pydantic's error locations
# and are dropped from the paths users see.
_TAGS: set[str] = set()


class Section(BaseModel):
    """A mapping of personable.yaml."""

    # Field docstrings describe the fields in the JSON Schema; they are read when
    # the schema is made (json_schema), not at import (pydantic's
    # use_attribute_docstrings parses every class's source: a third of the import).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {k: v for k, v in data.items() if v is not None or _accepts_none(cls, k)}


def _accepts_none(model: type[BaseModel], key: str) -> bool:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return type(None) in get_args(info.annotation)
    return True  # an unknown key: keep it, so that it is reported


Located = tuple[tuple[str | int, ...], str, Any]  # (location, message, input)


def fail(problems: Iterable[Located | InitErrorDetails], title: str = "personable.yaml") -> None:
    """Raise problems from inside a validator: ``(location, message, input)``
    triples, or errors of a nested validation (see :func:`relocate`); pydantic
    puts them under the location being validated."""
    details = [p if isinstance(p, dict) else
               InitErrorDetails(type=PydanticCustomError("invalid", p[1]), loc=p[0], input=p[2]) for p in problems]
    if details:
        raise ValidationError.from_exception_data(title, details)


def relocate(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[InitErrorDetails]:
    """The errors of a nested ``model_validate``, placed under ``prefix``, to
    :func:`fail` together with other problems (their kind and context are kept
    for :func:`problems_from`)."""
    return [InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"].replace("{", "{{").replace("}", "}}"),
                                                      {k: v for k, v in (e.get("ctx") or {}).items() if k != "error"}),
                             loc=prefix + tuple(e["loc"]), input=e.get("input"))
            for e in exc.errors(include_url=False)]


def one_of(choices: dict[str, Any], pick: Callable[[Any], str | None], message: str) -> Any:
    """A union whose member is chosen by ``pick`` (a tag per input shape), so a
    bad value gets one clear error (``message``) rather than one per member."""
    members = []
    for tag, kind in choices.items():
        _TAGS.add(f"<{tag}>")
        members.append(Annotated[kind, Tag(f"<{tag}>")])

    def discriminate(value: Any) -> str | None:
        tag = pick(value)
        return f"<{tag}>" if tag else None

    return Annotated[Union[tuple(members)], Discriminator(
        discriminate, custom_error_type="invalid_choice", custom_error_message=message)]


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float, bool)) else value


# A value written as text or as a number (YAML reads 0000 as an int); kept as text.
Text = Annotated[str, BeforeValidator(_as_text), WithJsonSchema({"type": ["string", "number", "boolean"]})]


def as_tuple(value: Any) -> Any:
    """YAML gives lists; the runtime objects hold tuples (immutable, hashable)."""
    return tuple(value) if isinstance(value, list) else value


# -- errors -------------------------------------------------------------------------------
def problems_from(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> list[Problem]:
    """pydantic's errors as ``Problem(path, problem)`` in the project's words."""
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(seg for seg in err["loc"] if seg not in _TAGS)
        problem = Problem(join_path(prefix, loc), _words(err, model, tuple(err["loc"])))
        if problem not in out:
            out.append(problem)
    return out


def join_path(prefix: str, loc: Iterable[str | int]) -> str:
    path = prefix
    for seg in loc:
        if isinstance(seg, int):
            path += f"[{seg}]"
        elif seg != "[key]":  # a mapping key that failed: the path already names it
            path += f".{seg}" if path else str(seg)
    return path


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "got a mapping"
    if isinstance(value, (list, tuple)):
        return "got a list"
    text = repr(value)
    return f"got {text if len(text) <= 60 else text[:57] + '...'}"


_KINDS = {
    "int_type": "must be a whole number", "int_from_float": "must be a whole number",
    "float_type": "must be a number", "string_type": "must be text", "bool_type": "must be true or false",
    "dict_type": "must be a mapping", "model_type": "must be a mapping", "dataclass_type": "must be a mapping",
    "list_type": "must be a list", "tuple_type": "must be a list",
}


def _words(err: Any, model: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        allowed = _keys_at(model, loc[:-1])
        if not allowed:
            return "unknown setting"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown setting{hint}; use one of {', '.join(allowed)}"
    if kind == "missing":
        return "is required"
    if kind in ("invalid", "invalid_choice"):
        return err["msg"] if kind == "invalid" else f"{err['msg']}, {_got(value)}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"must be one of {', '.join(choices)}, {_got(value)}"
    if kind in _KINDS:
        return f"{_KINDS[kind]}, {_got(value)}"
    bounds = {"greater_than_equal": "at least {ge}", "greater_than": "above {gt}",
              "less_than_equal": "at most {le}", "less_than": "below {lt}"}
    if kind in bounds:
        return f"must be {bounds[kind].format(**ctx)}, {_got(value)}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s)"
    return f"{str(err['msg']).replace('Input should be', 'must be')}, {_got(value)}"


def _unwrap(kind: Any) -> Any:
    while True:
        origin = get_origin(kind)
        if origin is Annotated:
            kind = get_args(kind)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(kind) if a is not type(None)]
            if len(members) != 1:
                return kind
            kind = members[0]
        else:
            return kind


def _fields(kind: Any) -> dict[str, Any] | None:
    found = getattr(kind, "__pydantic_fields__", None)
    return {(info.alias or name): info.annotation for name, info in found.items()} if found else None


def _tagged(union: Any, tag: Any) -> Any:
    for member in get_args(union):
        if get_origin(member) is Annotated and any(getattr(m, "tag", None) == tag for m in get_args(member)[1:]):
            return member
    return None


def _keys_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys the mapping at ``loc`` (pydantic's location, with union tags)
    accepts, to name them beside an unknown one."""
    kind: Any = model
    for seg in loc:
        kind = _unwrap(kind)
        fields = _fields(kind)
        if fields is not None:
            kind = fields.get(str(seg))
        elif get_origin(kind) is dict:
            kind = get_args(kind)[1]
        elif get_origin(kind) in (list, tuple):
            kind = get_args(kind)[0]
        elif get_origin(kind) in (Union, types.UnionType):
            kind = _tagged(kind, seg)
        else:
            return []
    return list(_fields(_unwrap(kind)) or [])


# -- the JSON Schema ----------------------------------------------------------------------
def json_schema_of(model: type[BaseModel], title: str) -> dict[str, Any]:
    """``model``'s JSON Schema (draft 2020-12), each field described by its docstring."""
    schema = model.model_json_schema(by_alias=True)
    classes = {cls.__name__: cls for cls in _subclasses(Section)}
    for name, part in [(model.__name__, schema), *schema.get("$defs", {}).items()]:
        if name in classes:
            for key, doc in _field_docs(classes[name]).items():
                if key in part.get("properties", {}):
                    part["properties"][key].setdefault("description", doc)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": title}


def _subclasses(cls: type) -> list[type]:
    direct: list[type] = cls.__subclasses__()
    return [sub for d in direct for sub in (d, *_subclasses(d))]


def _field_docs(cls: type[BaseModel]) -> dict[str, str]:
    """The string right below each field of the class body, by the field's key in the file."""
    try:
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    except (OSError, TypeError, IndexError, AttributeError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    for stmt, after in zip(body, body[1:]):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            info = cls.model_fields.get(stmt.target.id)
            if info is not None:
                docs[info.alias or stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs
