"""Prices files: model name prefixes and their USD per million tokens, checked strictly.

A price that is not a number, below zero or under a misspelled key would make every cost
wrong (or silently zero) without a word; each such mistake is an error naming the file,
the line or item, the key and the fix.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
from pathlib import Path
from typing import Any

from analytics.errors import PricesFileError

COLUMNS = (
    "model",
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "cached_input_usd_per_mtok",
)
_PRICES = COLUMNS[1:]
# May be left empty (CSV) or out (JSON): cached input then costs nothing.
_OPTIONAL = "cached_input_usd_per_mtok"

Price = tuple[str, float, float, float]


def read_prices(path: Path) -> list[Price]:
    """Rows of a prices file (CSV with a header, or a JSON list of objects with the same
    keys): model prefix, then USD per million tokens."""
    try:
        # utf-8-sig: a spreadsheet's CSV may begin with a byte order mark.
        with open(path, newline="", encoding="utf-8-sig") as handle:
            if path.suffix == ".json":
                rows = _from_json(path, handle.read())
            else:
                rows = _from_csv(path, csv.DictReader(handle))
    except OSError as error:
        raise PricesFileError(str(path), error.strerror or str(error)) from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise PricesFileError(str(path), f"cannot be read ({error})") from error
    _refuse_repeated_models(path, rows)
    return rows


def _refuse_repeated_models(path: Path, rows: list[Price]) -> None:
    """A model prefix given twice would be priced by whichever row came first."""
    seen: dict[str, int] = {}
    for number, (model, *_) in enumerate(rows, start=1):
        if model in seen:
            reason = (
                f"model {model!r} is given twice (price entries {seen[model]} and {number}); "
                "keep one"
            )
            raise PricesFileError(str(path), reason)
        seen[model] = number


def _from_json(path: Path, text: str) -> list[Price]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        reason = f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        raise PricesFileError(str(path), reason) from error
    except RecursionError as error:
        raise PricesFileError(str(path), "invalid JSON: nested too deeply") from error
    if not isinstance(items, list):
        raise PricesFileError(str(path), "not a JSON list of objects")
    rows = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            reason = f"item {number} is {type(item).__name__}, not an object"
            raise PricesFileError(str(path), reason)
        where = f"item {number}{_model_of(item)}"
        unknown = [k for k in item if k not in COLUMNS]
        if unknown:
            raise PricesFileError(str(path), f"{where}: unknown key {_suggest(unknown[0])}")
        missing = [k for k in COLUMNS if k not in item and k != _OPTIONAL]
        if missing:
            raise PricesFileError(str(path), f"{where}: missing keys {', '.join(missing)}")
        rows.append(_row(path, f"item {number}", item, text_numbers=False))
    return rows


def _from_csv(path: Path, reader: csv.DictReader[str]) -> list[Price]:
    header = list(reader.fieldnames or [])
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise PricesFileError(str(path), f"missing columns {', '.join(missing)}")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise PricesFileError(str(path), f"unknown column {_suggest(unknown[0])}")
    rows = []
    for row in reader:
        line = f"line {reader.line_num}"
        if None in row:
            reason = f"{line}{_model_of(row)}: more values than the header has columns"
            raise PricesFileError(str(path), reason)
        cached = row.get(_OPTIONAL)
        if cached is None or not cached.strip():
            row = {k: v for k, v in row.items() if k != _OPTIONAL}
        rows.append(_row(path, line, row, text_numbers=True))
    return rows


def _row(path: Path, where: str, row: dict[str, Any], *, text_numbers: bool) -> Price:
    """``text_numbers``: prices may be given as text (CSV cells); in JSON they are numbers."""
    model = row.get("model")
    if not isinstance(model, str) or not model.strip():
        reason = f"{where}: model is {model!r}, not a model name (a name prefix, e.g. 'claude-')"
        raise PricesFileError(str(path), reason)
    where = f"{where} (model {model!r})"
    prices = [_price(path, where, key, row.get(key, 0.0), text_numbers) for key in _PRICES]
    return (model, prices[0], prices[1], prices[2])


def _price(path: Path, where: str, key: str, value: object, text_numbers: bool) -> float:
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and text_numbers:
        number = _csv_number(value)
    if number is None or not math.isfinite(number):
        # As the file wrote it: JSON's null and true, not Python's None and True.
        shown = repr(value) if isinstance(value, str) or text_numbers else json.dumps(value)
        reason = f"{where}: {key} is {shown}, not a number; give USD per million tokens, e.g. 3.0"
        raise PricesFileError(str(path), reason)
    if number < 0:
        below = value.strip() if isinstance(value, str) else value
        reason = f"{where}: {key} is {below}, below 0; prices are USD per million tokens, ≥ 0"
        raise PricesFileError(str(path), reason)
    return number


def _csv_number(text: str) -> float | None:
    """A CSV cell as a number, or None when it is not one."""
    try:
        return float(text)
    except ValueError:
        return None


def _model_of(row: dict[str, Any]) -> str:
    model = row.get("model")
    return f" (model {model!r})" if isinstance(model, str) and model.strip() else ""


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, COLUMNS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{key!r}{hint}"
