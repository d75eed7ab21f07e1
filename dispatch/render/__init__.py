"""Rendering: the Jinja2 sandbox, previews and SMS segmentation."""
