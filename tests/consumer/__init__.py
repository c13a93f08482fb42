"""Tests of ese-consumer."""
