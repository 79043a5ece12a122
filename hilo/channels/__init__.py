"""Channel adapters: one module per kind of channel, all implementing `base.ChannelAdapter`."""
