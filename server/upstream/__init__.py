"""Calls to the model providers: the retry/fallback loop, the transports, the SSE reader."""
