"""Automation: rules, macros, canned responses, scheduled messages, auto-resolve and auto-replies."""
