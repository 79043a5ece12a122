"""Routing: teams' strategies, skills, presence, capacity, the queue, business hours and SLAs."""
