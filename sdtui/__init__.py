"""sdtui: the Textual app and the `sd` command line, both over sdcore."""
