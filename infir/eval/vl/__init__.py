"""Multimodal evaluation: rendered-text transcription and QA, GUI clicks (ScreenSpot format)."""
