"""Generated stubs of gateway.proto: run `python proto/generate.py`, never edit by hand."""
