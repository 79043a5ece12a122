"""Replies going out: the transactional outbox, its jobs and parts, the dispatcher and delivery outcomes."""
