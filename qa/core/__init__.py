"""The small core every stage stands on: the types passed between stages, the settings, errors,
locks, cores and the rules for calling an outside service."""
