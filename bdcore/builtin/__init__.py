"""Built-in datasets and models, registered through the same entry-point hooks as any plugin."""
