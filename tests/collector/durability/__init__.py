"""Durability: write-ahead log, replay, exactly-once storage, compaction, retention, crash recovery."""
