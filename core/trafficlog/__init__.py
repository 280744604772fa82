"""The traffic log and its outcomes: one schema and reader; router/ reads it, server/ writes it."""
