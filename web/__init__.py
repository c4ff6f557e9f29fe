"""Flask glue shared by every blueprint: database handle, sessions, access, htmx, headers."""
