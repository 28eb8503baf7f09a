"""Reads of the billing app; every tenant read takes the company and filters on it."""
