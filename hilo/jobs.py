"""Background work that is claimed, retried and given up: the timing every job loop shares."""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, base: float, ceiling: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider's Retry-After."""
    exponential = min(ceiling, base**attempt)
    delay = random.uniform(exponential / 2, exponential)
    return max(delay, retry_after or 0.0)
