"""read_ahead: order, errors at their position, early close stops and closes the source."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from hoopray.read_ahead import read_ahead


class Source:
    """A generator-like source that records how far it was pulled and whether it closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.pulled = 0
        self.closed = threading.Event()
        self.threads: set[str] = set()

    def __iter__(self) -> Iterator[int]:
        return self._items()

    def _items(self) -> Iterator[int]:
        try:
            for i in range(self.count):
                self.threads.add(threading.current_thread().name)
                if i == self.fail_at:
                    raise ValueError(f"bad frame {i}")
                self.pulled += 1
                yield i
        finally:
            self.closed.set()


@pytest.mark.parametrize(
    ("count", "depth"),
    [(0, 1), (1, 1), (5, 1), (5, 2), (50, 4), (5, 0), (5, -1)],
)
def test_items_in_order(count: int, depth: int) -> None:
    source = Source(count)
    assert list(read_ahead(source, depth)) == list(range(count))
    assert source.closed.is_set()


@pytest.mark.parametrize(("fail_at", "depth"), [(0, 1), (3, 1), (3, 8)])
def test_error_raised_after_the_items_before_it(fail_at: int, depth: int) -> None:
    source = Source(10, fail_at=fail_at)
    got = []
    with pytest.raises(ValueError, match=f"bad frame {fail_at}"):
        for item in read_ahead(source, depth):
            got.append(item)
    assert got == list(range(fail_at))


@pytest.mark.parametrize("depth", [1, 3])
def test_early_exit_stops_and_closes_the_source(depth: int) -> None:
    source = Source(1000)
    for item in read_ahead(source, depth):
        if item == 2:
            break
    assert source.closed.wait(5)
    assert source.pulled <= 3 + depth + 1
    assert source.threads == {"read-ahead"}


def test_depth_bounds_how_far_ahead() -> None:
    source = Source(100)
    reader = read_ahead(source, 2)
    assert next(reader) == 0
    for _ in range(50):
        if source.pulled >= 4:
            break
        threading.Event().wait(0.01)
    assert source.pulled <= 1 + 2 + 1  # the one taken, two queued, one waiting to be put
    reader.close()
    assert source.closed.wait(5)
