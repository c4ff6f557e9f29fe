"""Domain rules as plain functions: no Flask, callable from views, the CLI and tests."""
