"""aiohttp views, one module per resource."""
