"""Featurizing a chunk of logged decisions column by column: the rows `features.rows_of` gives, faster.

The row path (features.flatten, context_flat, action_flat, then Encoder.encode) defines the
features; it walks each decision's parsed JSON in Python, some 60 µs a training row. Here a
chunk's JSON text is read by Arrow's JSON reader into struct columns, and the same rules are
applied to whole columns: a string column becomes one "name=value" feature per distinct value
(hashed once), a number column its non-zero values, true booleans 1, lists of strings one
feature per item, lists of numbers "name[i]"; names starting with "_" and the `diagnostics`
namespace are left out; the derived clock and match features are computed with NumPy. The
arrays then go through the Encoder's interactions and hashing exactly as the row path's do.

Only shapes the rules cover column-wise are taken: when the reader infers a type they do not
(a name that is a number in one decision and a string in another, text it reads as a
timestamp, a list of objects, ...), `Unsupported` is raised and the caller takes the row path
for that chunk. tests/unit/test_learning_columnar.py holds the two paths equal.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from scipy import sparse

from .features import CLOCK, IGNORED_NAMESPACES, MATCH, PRIOR_CLICKS, PRIOR_SHOWS, Encoder

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # columns, values, namespace codes, rows


class Unsupported(Exception):
    """A chunk whose JSON the column-wise rules do not cover (the row path takes it)."""


Texts = Union[pa.Array, Sequence[Optional[str]]]


def rows(encoder: Encoder, contexts: Texts, chosen_features: Texts, local: np.ndarray,
         positions: np.ndarray, field: Optional[str] = None) -> sparse.csr_matrix:
    """Row i: the action at positions[i] of chosen_features[local[i]] (a JSON list of action
    objects; null or empty: none) in the context contexts[local[i]] (a JSON object); with
    `field`, the list's objects hold the action's features under that name (a decision's
    candidates: {offerId, features}). Raises Unsupported."""
    local = np.asarray(local, dtype=np.int64)
    contexts, chosen_features = _large(contexts), _large(chosen_features)
    context = _read(contexts)
    empty = pc.fill_null(pc.equal(chosen_features, ""), True)
    lists = pc.if_else(empty, pa.scalar("[]", pa.large_string()), chosen_features)
    lists = _read(pc.binary_join_element_wise(pa.scalar('{"a":', pa.large_string()), lists,
                                              pa.scalar("}", pa.large_string()), pa.scalar("", pa.large_string())))
    lists = lists.column("a")
    actions = _pick(lists, local, np.asarray(positions, dtype=np.int64))
    if field is not None:
        actions = _inner(actions, field)
    context_parts, action_parts = _Parts(encoder), _Parts(encoder)
    for namespace, column in zip(context.column_names, context.columns):
        context_parts.namespace(namespace, column.combine_chunks(), len(contexts))
    for field in actions.type:
        action_parts.namespace(field.name, _field(actions, field.name), len(local))
    if encoder.space.derived:
        _clock(context_parts, context)
        _match(action_parts, context, actions, local)
    return encoder.encode_arrays(context_parts.arrays(), action_parts.arrays(), len(contexts), local)


def _large(texts: Texts) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        texts = pa.concat_arrays(texts.chunks) if texts.num_chunks else pa.array([], pa.large_string())
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), type=pa.large_string())
    return texts.cast(pa.large_string())


def _read(texts: pa.Array) -> pa.Table:
    """One JSON object per text as a table (a column per top-level key), read in one block (so
    types are inferred from every text)."""
    if texts.null_count:
        raise Unsupported("a missing JSON text")
    whole = pa.LargeListArray.from_arrays(pa.array([0, len(texts)], pa.int64()), texts)
    data = pc.binary_join(whole, pa.scalar("\n", pa.large_string()))[0].as_buffer()
    try:
        return pj.read_json(pa.BufferReader(data), read_options=pj.ReadOptions(block_size=max(data.size + 1, 1 << 20)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise Unsupported(str(error)) from None


def _pick(lists: pa.ChunkedArray, local: np.ndarray, positions: np.ndarray) -> pa.StructArray:
    """Each row's action: element positions[i] of list local[i] (an empty object when there is none)."""
    array = lists.combine_chunks()
    if pa.types.is_null(array.type) or (pa.types.is_list(array.type) and pa.types.is_null(array.type.value_type)):
        return pa.array([{}] * len(local), type=pa.struct([]))  # no action has a feature
    if not pa.types.is_list(array.type) or not pa.types.is_struct(array.type.value_type):
        raise Unsupported(f"chosen features of type {array.type}")
    offsets = array.offsets.to_numpy()
    lengths = np.diff(offsets)
    valid = np.asarray(array.is_valid()) if array.null_count else np.ones(len(array), dtype=bool)
    ok = (positions < lengths[local]) & valid[local]
    index = pa.array(offsets[local] + positions, mask=~ok)
    return array.values.take(index)  # offsets index the values (unlike flatten(), which drops null lists' items)


def _inner(actions: pa.StructArray, field: str) -> pa.StructArray:
    """Each action's `field` object (none: an empty one)."""
    inner = _field(actions, field)
    if inner is None or pa.types.is_null(inner.type):
        return pa.array([{}] * len(actions), type=pa.struct([]))
    if not pa.types.is_struct(inner.type):
        raise Unsupported(f"{field} of type {inner.type}")
    return inner


class _Parts:
    """Features of rows collected column by column: (column, value, namespace code, row) arrays."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, namespace: str, names: Sequence[str], which: np.ndarray, values: np.ndarray,
            rows: np.ndarray) -> None:
        """Features named names[which[j]] with values[j] in rows[j]."""
        if not len(rows):
            return
        columns, code = self.encoder.columns_of(namespace, names)
        self.parts.append((columns[which], values.astype(np.float32), np.full(len(rows), code, np.int32),
                           rows.astype(np.int64)))

    def named(self, namespace: str, name: str, values: np.ndarray, rows: np.ndarray) -> None:
        self.add(namespace, [name], np.zeros(len(rows), dtype=np.int64), values, rows)

    def namespace(self, namespace: str, column: pa.Array, count: int) -> None:
        if namespace[:1] == "_" or namespace in IGNORED_NAMESPACES:
            return
        rows = np.arange(count, dtype=np.int64)
        if pa.types.is_struct(column.type):
            self.struct(namespace, "", column, rows)
        else:
            self.leaf(namespace, namespace, column, rows)

    def struct(self, namespace: str, name: str, column: pa.StructArray, rows: np.ndarray) -> None:
        for i, field in enumerate(column.type):
            key = field.name
            if key[:1] == "_":
                continue
            child = column.field(i)
            if column.null_count:  # a null object's fields are null too
                child = pc.if_else(column.is_valid(), child, pa.nulls(len(child), child.type))
            inner = f"{name}.{key}" if name else key
            if pa.types.is_struct(child.type):
                self.struct(namespace, inner, child, rows)
            else:
                self.leaf(namespace, inner, child, rows)

    def leaf(self, namespace: str, name: str, column: pa.Array, rows: np.ndarray) -> None:
        kind = column.type
        if pa.types.is_null(kind):
            return
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            self.strings(namespace, name, column, rows)
        elif pa.types.is_boolean(kind):
            hit = np.asarray(pc.fill_null(column, False), dtype=bool)
            self.named(namespace, name, np.ones(int(hit.sum())), rows[hit])
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
            values = np.asarray(pc.fill_null(column.cast(pa.float64()), 0.0), dtype=np.float64)
            hit = (values != 0) & np.isfinite(values)
            self.named(namespace, name, values[hit], rows[hit])
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            self.list(namespace, name, column, rows)
        else:
            raise Unsupported(f"{namespace}/{name} of type {kind}")

    def strings(self, namespace: str, name: str, column: pa.Array, rows: np.ndarray) -> None:
        encoded = column.dictionary_encode()
        indices = np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64)
        hit = indices >= 0
        names = [f"{name}={v}" for v in encoded.dictionary.to_pylist()]
        self.add(namespace, names, indices[hit], np.ones(int(hit.sum())), rows[hit])

    def list(self, namespace: str, name: str, column: pa.Array, rows: np.ndarray) -> None:
        item = column.type.value_type
        if pa.types.is_null(item):
            return
        owner = rows[np.asarray(pc.list_parent_indices(column), dtype=np.int64)]
        items = pc.list_flatten(column)
        if pa.types.is_string(item) or pa.types.is_large_string(item):
            self.strings(namespace, name, items, owner)
            return
        if not (pa.types.is_boolean(item) or pa.types.is_integer(item) or pa.types.is_floating(item)):
            raise Unsupported(f"{namespace}/{name}: a list of {item}")
        # "name[i]" for the item at index i of its list
        lengths = np.asarray(pc.fill_null(pc.list_value_length(column), 0), dtype=np.int64)
        index = np.arange(len(items), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        values = np.asarray(pc.fill_null(items.cast(pa.float64()), 0.0), dtype=np.float64)
        hit = (values != 0) & np.isfinite(values)
        width = int(index.max()) + 1 if len(index) else 0
        self.add(namespace, [f"{name}[{i}]" for i in range(width)], index[hit], values[hit], owner[hit])

    def arrays(self) -> Arrays:
        """The features in row order (a row's features contiguous, as Encoder.encode_arrays wants)."""
        if not self.parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int32), empty
        columns, values, spaces, rows = (np.concatenate(p) for p in zip(*self.parts))
        order = np.argsort(rows, kind="stable")
        return columns[order], values[order], spaces[order], rows[order]


def _field(table_or_struct, *path: str) -> Optional[pa.Array]:
    """A nested field (None when absent); a null parent makes the field null."""
    current = table_or_struct
    for i, key in enumerate(path):
        if isinstance(current, pa.Table):
            if key not in current.column_names:
                return None
            current = current.column(key).combine_chunks()
            continue
        if not pa.types.is_struct(current.type):
            raise Unsupported(f"{'/'.join(path[:i])} is {current.type}, not an object")
        if current.type.get_field_index(key) < 0:
            return None
        child = current.field(key)
        if current.null_count:
            child = pc.if_else(current.is_valid(), child, pa.nulls(len(child), child.type))
        current = child
    return current


def _numbers(column: Optional[pa.Array], count: int) -> np.ndarray:
    """A number column as float64 with NaN where null or absent; other types are not numbers here."""
    if column is None or pa.types.is_null(column.type):
        return np.full(count, np.nan)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        if pa.types.is_boolean(column.type):
            raise Unsupported("a boolean where a number is read")
        return np.full(count, np.nan)
    return np.asarray(pc.fill_null(column.cast(pa.float64()), np.nan), dtype=np.float64)


def _strings(column: Optional[pa.Array], count: int) -> np.ndarray:
    """A string column as an object array with None where null, absent or not a string."""
    if column is None or not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return np.full(count, None, dtype=object)
    return np.asarray(column.to_pylist(), dtype=object)


def _clock(parts: _Parts, context: pa.Table) -> None:
    """The context's derived clock features: the hour as a point on a circle."""
    hour = _numbers(_field(context, "time", "hour"), context.num_rows)
    rows = np.flatnonzero(~np.isnan(hour))
    angle = 2 * np.pi * hour[rows] / 24
    for name, values in (("sin", np.sin(angle)), ("cos", np.cos(angle))):
        values[values == 0] = 1e-9
        parts.named(CLOCK, name, values, rows)


def _match(parts: _Parts, context: pa.Table, actions: pa.StructArray, local: np.ndarray) -> None:
    """The derived match features of each action in its context (features.action_flat's)."""
    n = len(local)
    all_rows = np.arange(n, dtype=np.int64)
    category = _strings(_field(actions, "offer", "category"), n)
    has_category = np.array([isinstance(c, str) for c in category], dtype=bool)
    # the shopper's interest in the offer's category
    interest_struct = _field(context, "interest")
    interest = np.full(n, np.nan)
    if interest_struct is not None and not pa.types.is_null(interest_struct.type):
        if not pa.types.is_struct(interest_struct.type):
            raise Unsupported(f"interest is {interest_struct.type}")
        for name in {c for c in category[has_category]}:
            if interest_struct.type.get_field_index(name) < 0:
                continue
            mine = np.flatnonzero(has_category & (category == name))
            values = _numbers(_field(interest_struct, name), len(interest_struct))
            interest[mine] = values[local[mine]]
    known = has_category & (interest > 0)
    rows = all_rows[known]
    parts.named(MATCH, "categoryInterest", interest[known], rows)
    parts.named(MATCH, "logInterest", np.log(interest[known]) - 1e-9, rows)
    parts.named(MATCH, "noInterest", np.ones(int((has_category & ~known).sum())), all_rows[has_category & ~known])
    page = _strings(_field(context, "page", "category"), context.num_rows)[local]
    same = has_category & (page == category)
    parts.named(MATCH, "pageCategory", np.ones(int(same.sum())), all_rows[same])
    # the shopper's own click rate on the offer
    seen = _numbers(_field(actions, "history", "shown"), n)
    clicks = _field(actions, "history", "clicked")
    if clicks is not None and (pa.types.is_string(clicks.type) or pa.types.is_large_string(clicks.type)):
        raise Unsupported("history.clicked holds text")
    clicked = _numbers(clicks, n)
    clicked = np.where(np.isnan(clicked), 0.0, clicked)
    shown = seen > 0
    parts.named(MATCH, "ownCtr", (clicked[shown] + PRIOR_CLICKS) / (seen[shown] + PRIOR_SHOWS), all_rows[shown])
    parts.named(MATCH, "neverShown", np.ones(int((~shown).sum())), all_rows[~shown])
    _brands(parts, context, actions, local)


def _brands(parts: _Parts, context: pa.Table, actions: pa.StructArray, local: np.ndarray) -> None:
    """How much of the shopper's recent viewing went to the offer's products' brands."""
    brands = _field(actions, "offer", "brands")
    if brands is None or pa.types.is_null(brands.type):
        return
    if not pa.types.is_list(brands.type):
        return  # not a list: action_flat adds nothing
    if pa.types.is_null(brands.type.value_type):
        return  # only empty lists
    if not pa.types.is_string(brands.type.value_type):
        raise Unsupported(f"offer brands of type {brands.type}")
    lengths = np.asarray(pc.fill_null(pc.list_value_length(brands), 0), dtype=np.int64)
    owner = np.asarray(pc.list_parent_indices(brands), dtype=np.int64)
    items = np.asarray(pc.list_flatten(brands).to_pylist(), dtype=object)
    shares = np.full(len(items), np.nan)
    seen = _field(context, "brands")
    if seen is not None and not pa.types.is_null(seen.type):
        if not pa.types.is_struct(seen.type):
            raise Unsupported(f"brands is {seen.type}")
        for name in {b for b in items if isinstance(b, str)}:
            if seen.type.get_field_index(name) < 0:
                continue
            mine = np.flatnonzero(items == name)
            values = _numbers(_field(seen, name), len(seen))
            shares[mine] = values[local[owner[mine]]]
    positive = shares > 0
    total = np.bincount(owner[positive], weights=shares[positive], minlength=len(local))
    count = np.bincount(owner[positive], minlength=len(local))
    listed = lengths > 0
    known = listed & (count > 0)
    rows = np.flatnonzero(known)
    parts.named(MATCH, "brandShare", total[known] / lengths[known], rows)
    parts.named(MATCH, "brandSeen", count[known] / lengths[known], rows)
    unseen = np.flatnonzero(listed & (count == 0))
    parts.named(MATCH, "brandUnseen", np.ones(len(unseen)), unseen)
