"""ISBT 128 DINs: the pure rules live in ``shared_events.din`` (the hospital scans DINs too)."""

from shared_events.din import DIN_LENGTH, InvalidDIN, check_character, make_din, normalize_din

__all__ = ["DIN_LENGTH", "InvalidDIN", "check_character", "make_din", "normalize_din"]
