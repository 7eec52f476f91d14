"""Open311 GeoReport v2: reporting apps list services, post requests and follow them."""
