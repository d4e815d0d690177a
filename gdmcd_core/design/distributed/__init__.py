"""The design loop in shards on a Ray cluster: executor.py (`optimize_sharded`), shards.py (split and merge)."""
