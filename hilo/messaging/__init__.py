"""Channel plumbing around the adapters: per-channel opt-outs, inbound media fetch, public media links."""
