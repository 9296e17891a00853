"""Generated from proto/ by proto/generate.py (`nox -s proto`); do not edit."""
