"""servicegen: DICOM service modules and docs generated from reStructuredText tables."""
