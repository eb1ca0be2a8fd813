"""The web: fetching pages with guarded addresses and deadlines, turning them into corpus files,
feeds and `qa watch`."""
