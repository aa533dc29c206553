"""Embedded offline sources assembled at run time from installed packages."""
