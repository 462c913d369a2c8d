"""offer.shown leaves the request path: buffered, sent by a background thread, nothing lost on close."""
import threading
import time

from shared import events, offers
from tests.waiting import wait_until


def shown(i: int, user: str = "u1") -> events.Event:
    data = events.OfferShownV1(decisionId=f"d{i}", context={}, candidates=[], chosen=[], modelVersion="m",
                               exploration=events.Exploration(policy="greedy"))
    return events.new(events.OFFER_SHOWN, user, data, source=events.OFFERS_SOURCE, id=f"d{i}")


class Hub:
    """A send port that records batches; it can be slow, fail a number of times, or block."""

    def __init__(self, failures=0, delay=0.0):
        self.batches, self.failures, self.delay = [], failures, delay
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, batch):
        self.gate.wait()
        time.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("hub unavailable")
        self.batches.append(list(batch))

    @property
    def ids(self):
        return [e.id for batch in self.batches for e in batch]


def test_publish_returns_at_once_and_the_background_sender_delivers_in_order():
    hub = Hub(delay=0.05)
    publisher = offers.BackgroundPublisher(hub)
    began = time.perf_counter()
    for i in range(20):
        publisher(shown(i))
    assert time.perf_counter() - began < 0.05  # no send on the caller's thread
    assert publisher.flush(5)
    assert hub.ids == [f"d{i}" for i in range(20)] and publisher.sent == 20
    assert len(hub.batches) < 20  # what queued up while a send was running went out together
    publisher.close()


def test_close_sends_everything_still_buffered():
    hub = Hub()
    hub.gate.clear()  # the hub is slow to answer while requests keep coming
    publisher = offers.BackgroundPublisher(hub)
    for i in range(50):
        publisher(shown(i))
    hub.gate.set()
    publisher.close()
    assert sorted(hub.ids) == sorted(f"d{i}" for i in range(50)) and publisher.dropped == 0


def test_a_failed_send_is_retried_and_counted():
    hub = Hub(failures=2)
    publisher = offers.BackgroundPublisher(hub, backoff=lambda attempt: 0.01)
    publisher(shown(1))
    assert publisher.flush(5)
    assert hub.ids == ["d1"] and publisher.failed_sends == 2 and publisher.dropped == 0
    publisher.close()


def test_events_are_dropped_and_counted_only_after_every_attempt_failed():
    dropped = []
    hub = Hub(failures=10)
    publisher = offers.BackgroundPublisher(hub, attempts=3, backoff=lambda attempt: 0.0, on_drop=dropped.append)
    publisher(shown(1))
    assert publisher.flush(5)
    assert hub.ids == [] and publisher.dropped == 1 and dropped == [1] and publisher.failed_sends == 3
    publisher.close()


def test_a_full_buffer_drops_after_waiting_and_counts_it():
    hub = Hub()
    hub.gate.clear()
    publisher = offers.BackgroundPublisher(hub, capacity=2, max_batch=1, put_timeout=0.01)
    publisher(shown(0))
    assert wait_until(lambda: publisher.pending() == 0)  # the sender holds it, waiting for the hub
    for i in range(1, 6):  # two fit in the buffer, three do not
        publisher(shown(i))
    assert publisher.dropped == 3
    hub.gate.set()
    publisher.close()
    assert hub.ids == ["d0", "d1", "d2"]


def test_after_close_events_are_sent_on_the_callers_thread():
    hub = Hub()
    publisher = offers.BackgroundPublisher(hub)
    publisher.close()
    publisher(shown(7))
    assert hub.ids == ["d7"]


def test_a_retry_resends_only_the_users_whose_events_did_not_go_out():
    calls, gate, failed = [], threading.Event(), []

    def send(batch):
        gate.wait()
        calls.append([e.id for e in batch])
        if batch[0].user_id == "b" and not failed:
            failed.append(True)
            raise ConnectionError("hub unavailable")

    publisher = offers.BackgroundPublisher(send, backoff=lambda attempt: 0.0)
    publisher(shown(0, "z"))
    assert wait_until(lambda: publisher.pending() == 0)  # the sender holds d0 at the gate
    for i, user in ((1, "a"), (2, "b"), (3, "a")):
        publisher(shown(i, user))
    gate.set()
    assert publisher.flush(5)
    assert calls == [["d0"], ["d1", "d3"], ["d2"], ["d2"]] and publisher.sent == 4
    publisher.close()
