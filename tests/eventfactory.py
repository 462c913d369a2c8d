"""Test events: single CloudEvents, seeded workloads of many users, and the counts they must produce."""
from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from typing import Optional

from shared import events

BASE = datetime(2026, 11, 22, 3, 0, tzinfo=timezone.utc)
CATEGORIES = ("shoes", "books", "garden", "toys", "kitchen")
OFFERS = ("of-1", "of-2", "of-3", "of-4")
MODELS = ("m-1", "m-2")


def iso(time: datetime) -> str:
    return time.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def raw(event_type: str, user: str, data: dict, *, id: Optional[str] = None,
        time: Optional[datetime] = BASE) -> dict:
    event = {"specversion": "1.0", "id": id or str(uuid.uuid4()), "source": "/tests", "type": event_type,
             "subject": user, "data": data}
    if time is not None:
        event["time"] = iso(time)
    return event


def view(user: str, category: str = "shoes", product: str = "p-1", **kw) -> dict:
    return raw(events.PRODUCT_VIEWED, user, {"productId": product, "category": category}, **kw)


def cart(user: str, category: str = "shoes", product: str = "p-1", **kw) -> dict:
    return raw(events.CART_ADDED, user, {"productId": product, "category": category, "price": 10.0}, **kw)


def purchase(user: str, category: str = "shoes", product: str = "p-1", **kw) -> dict:
    return raw(events.PRODUCT_PURCHASED, user, {"productId": product, "category": category, "price": 10.0,
                                                "quantity": 1}, **kw)


def shown(user: str, decision: str, offers: tuple[str, ...] = ("of-1",), model: str = "m-1", **kw) -> dict:
    data = {"decisionId": decision, "context": {"user": {"segment": "new"}},
            "candidates": [{"offerId": o, "features": {"kind": "deal"}} for o in offers],
            "chosen": [{"offerId": o, "slot": i, "probability": 0.5} for i, o in enumerate(offers)],
            "modelVersion": model, "exploration": {"policy": "epsilon-greedy", "epsilon": 0.2}}
    return raw(events.OFFER_SHOWN, user, data, id=kw.pop("id", decision), **kw)


def clicked(user: str, decision: str, offer: str = "of-1", **kw) -> dict:
    return raw(events.OFFER_CLICKED, user, {"offerId": offer, "decisionId": decision}, **kw)


def reward(user: str, decision: str, value: float = 1.0, **kw) -> dict:
    return raw(events.REWARD_RECEIVED, user, {"decisionId": decision, "value": value}, **kw)


def workload(n_events: int, n_users: int, seed: int = 1, with_shown: bool = False, hours: int = 3,
             prefix: str = "u", offers: tuple[str, ...] = OFFERS) -> list[dict]:
    """A seeded mix of activity from `n_users` users, each user's events in time order over `hours`.

    Activity is what a website posts (views, carts, purchases, clicks, rewards); with
    `with_shown` the offers function's offer.shown events are mixed in, and clicks answer them.
    """
    rng = random.Random(seed)
    users = [f"{prefix}-{seed}-{i}" for i in range(n_users)]
    clocks = {u: BASE + timedelta(seconds=rng.uniform(0, 60)) for u in users}
    step = hours * 3600 / max(1, n_events / n_users)
    decisions: dict[str, list[str]] = defaultdict(list)
    out = []
    for _ in range(n_events):
        user = rng.choice(users)
        clocks[user] += timedelta(seconds=rng.uniform(0.1, 2 * step))
        kw = dict(id=str(uuid.UUID(int=rng.getrandbits(128))), time=clocks[user])
        category, product = rng.choice(CATEGORIES), f"p-{rng.randrange(40)}"
        roll = rng.random()
        if with_shown and roll < 0.25:
            decision = kw["id"]
            decisions[user].append(decision)
            out.append(shown(user, decision, tuple(rng.sample(offers, 2)), rng.choice(MODELS), **kw))
        elif roll < 0.6:
            out.append(view(user, category, product, **kw))
        elif roll < 0.7:
            out.append(cart(user, category, product, **kw))
        elif roll < 0.78:
            out.append(purchase(user, category, product, **kw))
        elif roll < 0.92:
            decision = decisions[user][-1] if decisions[user] else f"d-{rng.getrandbits(32)}"
            out.append(clicked(user, decision, rng.choice(offers), **kw))
        else:
            out.append(reward(user, f"d-{rng.getrandbits(32)}", 1.0, **kw))
    return out


def hour(time_text: str) -> str:
    return time_text[:13] + ":00:00Z"


def expected(raws: list[dict]) -> tuple[dict, dict]:
    """What the projections must show for these events, each counted once by id:
    per user {eventCount, carts, purchases, offersShown, offersClicked}, and per
    (offerId, hour) {impressions, clicks}."""
    users: dict[str, dict] = defaultdict(lambda: {"eventCount": 0, "carts": 0, "purchases": 0,
                                                  "offersShown": Counter(), "offersClicked": Counter()})
    stats: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for event in {e["id"]: e for e in raws}.values():
        user = users[event["subject"]]
        user["eventCount"] += 1
        if event["type"] == events.CART_ADDED:
            user["carts"] += 1
        elif event["type"] == events.PRODUCT_PURCHASED:
            user["purchases"] += 1
        elif event["type"] == events.OFFER_SHOWN:
            for chosen in event["data"]["chosen"]:
                user["offersShown"][chosen["offerId"]] += 1
                stats[(chosen["offerId"], hour(event["time"]))]["impressions"] += 1
        elif event["type"] == events.OFFER_CLICKED:
            user["offersClicked"][event["data"]["offerId"]] += 1
            stats[(event["data"]["offerId"], hour(event["time"]))]["clicks"] += 1
    return ({u: {**v, "offersShown": dict(v["offersShown"]), "offersClicked": dict(v["offersClicked"])}
             for u, v in users.items()},
            {k: {"impressions": v["impressions"], "clicks": v["clicks"]} for k, v in stats.items()})
