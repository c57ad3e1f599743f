"""Tests of Model Hub."""
