"""The compatibility checks: the venue's answers against the official SDK's response models.

``Compat.check(call, model, payload)`` validates every object of an answer with the SDK's
pydantic model (its fields are ``StrictStr``/``StrictInt``..., so a number sent for a string
fails), and compares key sets both ways: a key the model declares but the answer lacks, and a
key the answer has but the model does not know, are mismatches unless the call names them as
expected (with the reason next to it). A model that merges variants (exchangeInfo's filters:
one model for every filter type) is ``PARTIAL``: only its types and unknown keys count.
Every mismatch names the call and the field.

``COMPAT`` gathers the counts of the whole run; ``conftest`` prints them at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bot_cli.paper.server import PaperHandle, start_in_process


PARTIAL = frozenset({"ExchangeInformationResponseSymbolsInnerFiltersInner"})


@dataclass(frozen=True)
class Mismatch:
    call: str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.call}: {self.field}: {self.problem}"


@dataclass
class Compat:
    calls: int = 0
    fields: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    def check(
        self,
        call: str,
        model: type[BaseModel],
        payload: Any,
        *,
        absent: frozenset[str] = frozenset(),
        extra: frozenset[str] = frozenset(),
    ) -> list[Mismatch]:
        """Validate ``payload`` (an object or a list of them); the mismatches found."""
        self.calls += 1
        found: list[Mismatch] = []
        rows = payload if isinstance(payload, list) else [payload]
        for row in rows:
            found += self._object(call, model, row, absent, extra)
        self.mismatches += found
        return found

    def _object(
        self, call: str, model: type[BaseModel], obj: Any, absent: frozenset[str],
        extra: frozenset[str],
    ) -> list[Mismatch]:  # fmt: skip
        if not isinstance(obj, dict):
            return [Mismatch(call, "(answer)", f"an object expected, got {type(obj).__name__}")]
        declared = _aliases(model)
        missing = set() if model.__name__ in PARTIAL else declared.keys() - obj.keys() - absent
        found = [Mismatch(call, k, "declared by the SDK model, absent") for k in sorted(missing)]
        found += [Mismatch(call, k, "not in the SDK model") for k in
                  sorted(obj.keys() - declared.keys() - extra)]  # fmt: skip
        self.fields += len(declared.keys() & obj.keys())
        try:
            model.model_validate(obj)
        except ValidationError as err:
            for e in err.errors():
                where = ".".join(str(x) for x in e["loc"])
                found.append(Mismatch(call, where, f"{e['msg']} (sent {e.get('input')!r})"))
        for key, nested in declared.items():
            if nested is not None and isinstance(obj.get(key), (dict, list)):
                value = obj[key]
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, dict):
                        found += self._object(f"{call}.{key}", nested, item, absent, extra)
        return found


def _aliases(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """The model's wire keys, each with the nested model it holds, if any."""
    from binance_common.utils import iter_nested_models

    out: dict[str, type[BaseModel] | None] = {}
    for name, info in model.model_fields.items():
        if name == "additional_properties":
            continue
        nested = next(iter(iter_nested_models(info.annotation)), None)
        out[info.alias or name] = nested
    return out


COMPAT = Compat()


@contextlib.contextmanager
def venue_thread(state_dir: Path, **kwargs: Any) -> Iterator[PaperHandle]:
    """A venue on an ephemeral port, in its own thread and loop (sync clients need that)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            box["handle"] = loop.run_until_complete(start_in_process(state_dir, **kwargs))
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            box["error"] = err
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(box["handle"].stop())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(20), "the venue thread did not start"
    if "error" in box:
        raise box["error"]
    try:
        yield box["handle"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(20)
        loop.close()
