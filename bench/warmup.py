"""The unmeasured warm-up before a ramp's steps, and the stock a ramp needs (``make bench``)."""

from __future__ import annotations

from mix import MEAN_UNITS

WARMUP_RATE = 30.0  # requests/s of the unmeasured warm-up step
JIT_SETTLED_CORES = 0.03  # the warm-up goes on until the broker's JIT compilers use less than this...
WARMUP_MORE_SECONDS = 15.0  # ... over a further warm-up step this long
WARMUP_MAX_SECONDS = 300.0  # ... or until the warm-up has lasted this long


def units_to_stock(rates: list[float], step_seconds: float, warmup_seconds: float) -> int:
    """Enough units for every step and the longest warm-up (it goes on until the broker's JIT settles).

    Stocked for less, the last steps would find groups sold out and decide by rejection, which
    costs less than an allocation: a flattering figure.
    """
    warmup = max(warmup_seconds, WARMUP_MAX_SECONDS + WARMUP_MORE_SECONDS)
    planned = sum(rates) * step_seconds + WARMUP_RATE * warmup
    return max(5000, int(planned * MEAN_UNITS * 1.3))
