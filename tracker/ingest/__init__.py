"""Getting usage in: sync orchestration, the bulk writer, CSV imports."""
