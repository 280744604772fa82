"""The traffic log and its outcomes: one schema, one reader, read by router/ and written by server/."""
