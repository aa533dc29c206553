"""Synthetic vision data for the InfiR-VL reproduction: rendered text, formulas, GUI screens and screen coordinates."""
