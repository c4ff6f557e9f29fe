"""One package per feature; each blueprint's URL prefix is its name."""
