"""Data directory: value sets, vocabularies, rules and the notice text of the consent engine (a package so that
wheels ship its YAML)."""
