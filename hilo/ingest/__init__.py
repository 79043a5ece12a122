"""Incoming messages: from a parsed webhook, mailbox or widget to a contact, a thread and a stored message."""
