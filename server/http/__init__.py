"""The HTTP door: the Starlette app, one module per endpoint, the Responses API."""
