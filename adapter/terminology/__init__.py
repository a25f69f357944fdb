"""Terminology as data: the instrument catalog and scoring, code maps, ICD-10-CM normalisation, system URIs.

Data files (``instruments/*.yaml``, ``codemaps/*.yaml``) carry a source for every entry, and
``verified: false`` where no primary source confirmed it; the modules here only load, validate and apply them.
"""
