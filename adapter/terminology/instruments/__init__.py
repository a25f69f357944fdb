"""Data directory: the instrument catalog (a package so that wheels ship its YAML)."""
