"""`BoundedCache`: the size-bounded, thread-safe mapping of the decode, lesion and session caches."""

import threading

import pytest

from explorer.core.caches import BoundedCache


def test_the_oldest_written_entry_goes_first():
    cache = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a read does not keep an entry longer...
    cache.put("c", 3)
    assert "a" not in cache and cache.get("b") == 2 and cache.get("c") == 3 and len(cache) == 2
    cache.put("b", 20)  # ...a write does
    cache.put("d", 4)
    assert cache.get("c") is None and cache.get("b") == 20
    assert cache.get("missing", "default") == "default"
    assert cache.pop("b") == 20 and cache.pop("b", "gone") == "gone" and len(cache) == 1
    cache.clear()
    assert len(cache) == 0


def test_lru_keeps_what_is_read():
    cache = BoundedCache(2, lru=True)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3


@pytest.mark.parametrize("lru", [False, True])
def test_the_size_bound_holds_under_many_puts(lru):
    cache = BoundedCache(16, lru=lru)
    for i in range(10_000):
        cache.put(i, i)
        cache.get(i // 2)
        assert len(cache) <= 16
    assert [cache.get(i) for i in range(10_000 - 16, 10_000)] == list(range(10_000 - 16, 10_000))


def test_a_size_below_one_is_refused():
    with pytest.raises(ValueError, match="maxsize must be at least 1"):
        BoundedCache(0)


def test_threads_share_one_cache_safely():
    cache = BoundedCache(50, lru=True)
    errors = []

    def work(offset):
        try:
            for i in range(3000):
                key = (offset + i) % 80
                cache.put(key, key * 2)
                value = cache.get((key + 7) % 80)
                assert value is None or value == ((key + 7) % 80) * 2
                if i % 5 == 0:
                    cache.pop((key + 3) % 80)
                assert len(cache) <= 50
        except Exception as err:  # noqa: BLE001 - reported below, from the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(cache) <= 50
