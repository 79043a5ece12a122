"""The live-chat widget and web forms a business puts on its own site."""
