"""servicegen: DICOM service modules and docs generated from reStructuredText tables."""

from pathlib import Path

BUILTIN_TEMPLATES = next(
    where
    for where in (
        # an installed wheel: pyproject.toml installs templates/ as generator/templates
        Path(__file__).resolve().parent / "templates",
        # a checkout or an editable install
        Path(__file__).resolve().parent.parent / "templates",
    )
    if where.is_dir()
)
"""The built-in templates. Found here rather than in ``render``, so ``check``'s fast path
(``cli``) fingerprints them without loading Jinja2, black or docutils."""
