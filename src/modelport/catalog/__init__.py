"""What models exist and what they can do: entries, tasks, the catalog, discovery, selection."""
