"""Bundled draft templates (Jinja2); users override them with drafting.templates_dir."""
