"""Small shared helpers: atomic file writes, device and precision selection."""
