import asyncio

from provtui.engine.limits import AppLimits, RateLimiter


async def test_rate_limiter_spreads_calls():
    clock = {"now": 0.0}
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock["now"] += seconds

    limiter = RateLimiter(5, clock=lambda: clock["now"], sleep=fake_sleep)
    for _ in range(15):
        await limiter.acquire()
    # a burst of 5, then 10 more at 5 a second: two seconds of waiting in all
    assert 1.99 < sum(slept) < 2.02


async def test_no_rate_means_no_wait():
    limiter = RateLimiter(None)
    await asyncio.wait_for(asyncio.gather(*(limiter.acquire() for _ in range(1000))), 1)


def test_app_limits_follow_settings():
    cache = {}
    app = {"id": "a", "settings": {"concurrency": 3, "rate": None}}
    first = AppLimits.for_app(cache, app)
    assert AppLimits.for_app(cache, app) is first
    app["settings"]["concurrency"] = 6
    assert AppLimits.for_app(cache, app) is not first and cache["a"].settings == (6, None)


async def test_a_rate_below_one_a_second_waits_its_interval_not_for_ever():
    """A bucket holding at most ``rate`` tokens never reached one below a call a second: the engine hung."""
    clock = {"now": 0.0}
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock["now"] += seconds

    limiter = RateLimiter(0.5, clock=lambda: clock["now"], sleep=fake_sleep)
    await asyncio.wait_for(asyncio.gather(*(limiter.acquire() for _ in range(3))), 1)
    assert 3.99 < sum(slept) < 4.02  # the first at once, then one every two seconds


def test_a_stored_rate_out_of_range_is_made_usable():
    """Settings are checked when set, but a store from before may hold 1e-300, NaN or infinity."""
    from provtui.engine.limits import usable_concurrency, usable_rate

    assert usable_rate(1e-300) == 0.01 and usable_rate(10**9) == 10_000 and usable_rate(2.5) == 2.5
    assert usable_rate(float("nan")) is None and usable_rate(float("inf")) is None and usable_rate(None) is None
    assert usable_concurrency(10**6) == 256 and usable_concurrency(0) == 4 and usable_concurrency(None) == 4
    limits = AppLimits.for_app({}, {"id": "a", "settings": {"concurrency": 3, "rate": 1e-300}})
    assert limits.settings == (3, 0.01)
