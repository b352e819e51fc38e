"""The runtime every generated package ships, kept here as ordinary source (linted, type-checked
and tested as such) and copied into the output verbatim: the status tables' class
(``_runtime``), the event handlers (``_handlers``), the reference archive (``backend`` and the
modules it is split into) and ``serve`` (``server``, ``__main__``), plus the docs' stylesheet.
This file itself is not copied; the output's ``__init__.py`` lists its pages."""
