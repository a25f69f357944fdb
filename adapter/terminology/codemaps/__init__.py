"""Data directory: code maps (a package so that wheels ship its YAML)."""
