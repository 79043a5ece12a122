"""The demo: a shop's support desk with a week of customers, channels that send through the
built-in demo provider, and a page to chat from as a customer (`hilo demo`)."""

from __future__ import annotations

from hilo.demo.people import DEMO_PASSWORD
from hilo.demo.seed import demo_sign_in, seed

__all__ = ["DEMO_PASSWORD", "demo_sign_in", "seed"]
