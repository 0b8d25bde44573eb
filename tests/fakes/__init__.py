"""Fake upstream servers that speak providers' documented wire formats over loopback."""
