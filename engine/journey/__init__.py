"""Journey definitions: model, loader, linter, expressions, templates."""
