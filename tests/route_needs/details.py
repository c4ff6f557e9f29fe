"""The account's details (addresses and contact): "update_profile"."""

from __future__ import annotations

NEEDS = {"details.show": {"update_profile"}, "details.edit": {"update_profile"}, "details.history": {"update_profile"}}
