"""The reliability suite (issue 8): concurrency, faults, load and backups; docs/reliability.md lists them."""
