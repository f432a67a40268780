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
