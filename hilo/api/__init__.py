"""REST API under /api/v1 and provider webhooks under /webhooks."""
