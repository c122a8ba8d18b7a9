"""sdcore: the in-process core of sdtui (libraries, indexing, jobs, events, network); no UI code."""
