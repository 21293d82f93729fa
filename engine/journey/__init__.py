"""Journey definitions: model, loader, expressions, templates, drawings."""
