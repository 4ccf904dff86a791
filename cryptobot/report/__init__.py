"""Reports: pure data builders (summary, serialize, build) and renderers that only render."""
