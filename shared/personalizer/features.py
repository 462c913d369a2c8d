"""Personalizer's lists of feature objects as one namespaced feature object.

A rank request carries `contextFeatures` and each action's `features` as lists of JSON objects.
Personalizer reads every top-level key of every object as a namespace (an object of features)
or a top-level feature, and objects later in the list add to the earlier ones. Merged, they are
one dict of the shape shared/learning/features.py flattens and hashes; names starting with "_"
are kept here and left out by that encoder, as Personalizer leaves them out of learning.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .errors import bad_request, detail

ACTION_ID = "actionId"


def _merge_into(out: dict[str, Any], new: Mapping[str, Any]) -> None:
    """Adds `new` to `out` without changing any object it was given: a namespace present in both
    becomes a new dict (the request's objects stay as sent); anything else is shared as it is."""
    for key, value in new.items():
        before = out.get(key)
        if isinstance(before, Mapping) and isinstance(value, Mapping):
            merged = dict(before)  # the same namespace in two objects: one namespace
            _merge_into(merged, value)
            out[key] = merged
        else:
            out[key] = value  # new, or a later scalar (or list) wins


def merge(objects: Sequence[Any], target: str = "features") -> dict[str, Any]:
    """The feature objects as one dict: namespaces present in several objects merge, later values win."""
    out: dict[str, Any] = {}
    for i, item in enumerate(objects):
        if not isinstance(item, Mapping):
            message = f"Features are not in key value pair format: item {i} is {type(item).__name__}, not an object"
            raise bad_request(message, "InvalidRankRequest", [detail("FeaturesNotInKeyValueFormat", message,
                                                                     f"{target}[{i}]")])
        _merge_into(out, item)
    return out


def action_features(action: Any) -> dict[str, Any]:
    """An action's merged features plus its id as the top-level feature {"actionId": id}.

    The encoder one-hots the id ("actionId=<id>"), so the loop learns a weight per action (and,
    with -q ::, per action and context feature) even when actions carry no features at all. An
    action whose features already use the name "actionId" keeps its own value.
    """
    merged = merge(action.features, "features")
    merged.setdefault(ACTION_ID, action.id)
    return merged
