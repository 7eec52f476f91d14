"""Open311 GeoReport v2: reporting apps list services, post requests and follow them.

The channel registers through its adapter (crm/open311/channel.py) in the channel registry.
"""
