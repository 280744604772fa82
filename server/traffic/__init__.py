"""The server side of the traffic log: the writer, the outcome service, the export."""
