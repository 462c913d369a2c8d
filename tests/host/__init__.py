"""Tests of the development Functions host (local/host)."""
