"""Customers: identity resolution, search, merge and the unified timeline."""
