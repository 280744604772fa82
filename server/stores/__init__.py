"""Where a server keeps its state when it is one of N replicas: PostgreSQL (postgres.py,
pg_stores.py, pg_chunks.py) for what must last, Redis (shared.py) for what must be shared
and fast. Without `server.database_url` / `server.redis_url` a server keeps SQLite files
under its data dir and its limits in memory, as a single process."""
