"""A refresh that runs at most every so many seconds, by one caller at a time (the others go on
with what they have): how the in-memory copies of blobs (the current model, the related-products
table, the Personalizer loop's settings) stay fresh without a read per request."""
from __future__ import annotations

import threading
import time
from typing import Callable


class Periodic:
    def __init__(self, seconds: float, monotonic: Callable[[], float] = time.monotonic):
        self.seconds, self._monotonic = seconds, monotonic
        self.lock = threading.Lock()  # held while refreshing
        self._checked = -float("inf")

    def run(self, refresh: Callable[[], None]) -> None:
        """`refresh()` if it is due and no other caller is refreshing."""
        if self._monotonic() - self._checked >= self.seconds and self.lock.acquire(blocking=False):
            try:
                self._checked = self._monotonic()
                refresh()
            finally:
                self.lock.release()

    def soon(self) -> None:
        """Due at the next `run`."""
        self._checked = -float("inf")

    def done(self) -> None:
        """Refreshed just now by other means (not due for `seconds`)."""
        self._checked = self._monotonic()
