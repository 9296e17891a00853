"""Cluster mode's shared control state: documents in the bucket changed with conditional writes, and leases."""
