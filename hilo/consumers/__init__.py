"""Durable consumers of committed events: the engine that reads the events table from a stored position
and runs the handlers features register, and where each consumer stands."""
