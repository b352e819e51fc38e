"""servicegen: DICOM service modules and docs generated from reStructuredText tables."""

from pathlib import Path

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "templates"
"""The built-in templates: in a checkout a link to the repository's ``templates/``, in a wheel
that folder's copy. Found here rather than in ``render``, so ``check``'s fast path (``cli``)
fingerprints them without loading Jinja2, black or docutils."""
RUNTIME = Path(__file__).resolve().parent / "runtime"
"""The runtime the generated package ships: ordinary source, copied into the output verbatim
(``render.runtime_files``); a ``--templates`` file named after one of its files plus ``.j2``
replaces it."""
