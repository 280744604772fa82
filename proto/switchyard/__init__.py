"""Switchyard protobuf packages; generated stubs live in v1/ (see proto/generate.py)."""
