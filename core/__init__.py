"""The shared core: chat message types, token counting, the base error tree, the traffic log."""
