"""Hilo: one contact, one thread, every channel."""

__version__ = "0.1.0"
