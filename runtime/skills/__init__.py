"""Skills: where an Expert's tools come from (the built-in `@perstack/base`, MCP servers,
interactive tools and delegates)."""
