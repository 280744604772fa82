"""The Anthropic Messages API door: wire types, translation to chat, stream events, the endpoint."""
