"""The gRPC door: the servicer (proto <-> internal types) and the server that hosts it."""
